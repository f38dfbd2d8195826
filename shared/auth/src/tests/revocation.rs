//! Revocable sessions (the customer's generation), disabling, the grant's absolute lifetime,
//! password change, and sign-up and reset links.

use std::sync::Mutex;
use std::time::Duration;

use squaremcp_core::{MailError, Mailer, OutgoingEmail};

use super::*;
use crate::standing;
use crate::{PasswordChangeError, SignupError, SignupPolicy};

/// Keeps what would have been mailed.
#[derive(Default)]
struct RecordingMailer(Mutex<Vec<OutgoingEmail>>);

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        self.0.lock().unwrap().push(email.clone());
        Ok(())
    }
}

impl RecordingMailer {
    /// Mail goes out in the background: wait a little for `count` messages.
    async fn wait_for(&self, count: usize) -> Vec<OutgoingEmail> {
        for _ in 0..200 {
            let sent = self.0.lock().unwrap().clone();
            if sent.len() >= count {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.0.lock().unwrap().clone()
    }
}

/// The harness with other settings and a recording mailer.
async fn harness(change: impl Fn(&mut AuthSettings)) -> (Harness, Arc<RecordingMailer>) {
    let clock = Arc::new(ManualClock(AtomicI64::new(1_800_000_000)));
    let store = Arc::new(SqliteStore::open_temporary().unwrap());
    let gateway = Arc::new(Gateway::new(
        store,
        Arc::new(NoKeyring),
        clock.clone(),
        Arc::new(Registry::new(vec![])),
        None,
    ));
    let customer = gateway
        .create_customer(
            "ada@example.com",
            "pro",
            Some(bcrypt::hash("correct horse", 4).unwrap()),
        )
        .await
        .unwrap();
    let mut settings = AuthSettings::new(PUBLIC);
    change(&mut settings);
    let mailer = Arc::new(RecordingMailer::default());
    let auth = Auth::new(gateway, settings, &Secret::new(vec![42; 32]))
        .unwrap()
        .with_mailer(mailer.clone());
    (
        Harness {
            auth,
            clock,
            customer: customer.id,
        },
        mailer,
    )
}

fn open(settings: &mut AuthSettings) {
    settings.signup = SignupPolicy {
        open: true,
        plan: "free".into(),
        ..SignupPolicy::default()
    };
}

/// The link's token: the last path segment of the line that holds `path`.
fn link_token(email: &OutgoingEmail, path: &str) -> String {
    let line = email
        .text
        .lines()
        .find(|l| l.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in {}", email.text));
    line.rsplit('/').next().unwrap().trim().to_owned()
}

async fn cookie(h: &Harness, password: &str) -> Secret<String> {
    h.auth
        .login("ada@example.com", password, "192.0.2.1")
        .await
        .unwrap()
        .1
}

async fn current(h: &Harness, cookie: &Secret<String>) -> bool {
    h.auth
        .current_session(cookie.expose())
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn revoking_sessions_ends_cookies_grants_codes_and_minted_tokens() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let old_cookie = cookie(&h, "correct horse").await;
    let tokens = h
        .exchange(&client, &h.code(&client).await, Some(VERIFIER))
        .await
        .unwrap();
    let unexchanged = h.code(&client).await;
    let customer = h
        .auth
        .gateway()
        .require_customer(&h.customer)
        .await
        .unwrap();
    let minted = h.auth.mint_user_token(&customer, 3600).await.unwrap();
    assert!(current(&h, &old_cookie).await);
    assert!(
        h.works_on_mcp(tokens.access_token.expose()).await && h.works_on_mcp(minted.expose()).await
    );

    let store = h.auth.gateway().store();
    let standing = standing::revoke_sessions(store, h.auth.gateway().now(), &h.customer)
        .await
        .unwrap();
    assert_eq!(standing.generation, 1);
    assert!(
        !current(&h, &old_cookie).await,
        "the old session cookie is refused"
    );
    assert!(
        h.auth.session(old_cookie.expose()).is_some(),
        "its signature alone is still fine: the generation decides"
    );
    assert!(
        !h.works_on_mcp(tokens.access_token.expose()).await,
        "the grant's access token stops at once"
    );
    assert!(
        !h.works_on_mcp(minted.expose()).await,
        "an operator-minted JWT stops too"
    );
    assert_eq!(
        code_of(
            &h.refresh(&client, tokens.refresh_token.expose())
                .await
                .err()
                .unwrap()
        ),
        "invalid_grant"
    );
    assert_eq!(
        code_of(
            &h.exchange(&client, &unexchanged, Some(VERIFIER))
                .await
                .err()
                .unwrap()
        ),
        "invalid_grant",
        "a code from before"
    );

    // What is issued afterwards works.
    let new_cookie = cookie(&h, "correct horse").await;
    assert!(current(&h, &new_cookie).await);
    let fresh = h
        .exchange(&client, &h.code(&client).await, Some(VERIFIER))
        .await
        .unwrap();
    assert!(h.works_on_mcp(fresh.access_token.expose()).await);
    assert!(
        h.refresh(&client, fresh.refresh_token.expose())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_grant_missing_from_the_index_still_ends_at_its_next_refresh() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let tokens = h
        .exchange(&client, &h.code(&client).await, Some(VERIFIER))
        .await
        .unwrap();
    // As if indexing the grant had failed.
    let store = h.auth.gateway().store();
    store
        .delete_item(&format!("oauth:grants:{}", h.customer))
        .await
        .unwrap();
    standing::revoke_sessions(store, h.auth.gateway().now(), &h.customer)
        .await
        .unwrap();
    assert_eq!(
        code_of(
            &h.refresh(&client, tokens.refresh_token.expose())
                .await
                .err()
                .unwrap()
        ),
        "invalid_grant"
    );
    assert!(
        !h.works_on_mcp(tokens.access_token.expose()).await,
        "the refused refresh deleted the grant"
    );
}

#[tokio::test]
async fn a_disabled_customer_cannot_sign_in_until_enabled() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let old_cookie = cookie(&h, "correct horse").await;
    let tokens = h
        .exchange(&client, &h.code(&client).await, Some(VERIFIER))
        .await
        .unwrap();
    let store = h.auth.gateway().store();
    standing::disable(store, h.auth.gateway().now(), &h.customer)
        .await
        .unwrap();
    assert!(matches!(
        h.auth
            .login("ada@example.com", "correct horse", "192.0.2.1")
            .await,
        Err(LoginError::Disabled)
    ));
    assert!(
        matches!(
            h.auth
                .login("ada@example.com", "wrong horse", "192.0.2.1")
                .await,
            Err(LoginError::Invalid)
        ),
        "a wrong password learns nothing about the account"
    );
    assert!(!current(&h, &old_cookie).await);
    assert!(!h.works_on_mcp(tokens.access_token.expose()).await);
    standing::enable(store, h.auth.gateway().now(), &h.customer)
        .await
        .unwrap();
    assert!(current(&h, &cookie(&h, "correct horse").await).await);
    assert!(
        !current(&h, &old_cookie).await,
        "enabling brings nothing revoked back"
    );
    assert_eq!(
        code_of(
            &h.refresh(&client, tokens.refresh_token.expose())
                .await
                .err()
                .unwrap()
        ),
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_grant_ends_at_its_maximum_age_however_often_refreshed() {
    let (h, _) = harness(|s| {
        s.grant_max_age = 10 * 24 * 3600;
        s.refresh_token_ttl = 7 * 24 * 3600;
    })
    .await;
    let (client, _) = h.register("none").await;
    let mut tokens = h
        .exchange(&client, &h.code(&client).await, Some(VERIFIER))
        .await
        .unwrap();
    for _ in 0..3 {
        h.advance(3 * 24 * 3600);
        tokens = h
            .refresh(&client, tokens.refresh_token.expose())
            .await
            .unwrap();
    }
    // Day 9: still inside; day 10 and after: over, although the last refresh was a day ago.
    h.advance(24 * 3600);
    assert_eq!(
        code_of(
            &h.refresh(&client, tokens.refresh_token.expose())
                .await
                .err()
                .unwrap()
        ),
        "invalid_grant"
    );
}

#[tokio::test]
async fn changing_the_password_keeps_only_this_session() {
    let h = Harness::new().await;
    let (client, _) = h.register("none").await;
    let other_cookie = cookie(&h, "correct horse").await;
    let tokens = h
        .exchange(&client, &h.code(&client).await, Some(VERIFIER))
        .await
        .unwrap();
    let this = h
        .auth
        .login("ada@example.com", "correct horse", "192.0.2.1")
        .await
        .unwrap()
        .0;
    let wrong = h
        .auth
        .change_password(&this, "wrong horse", "battery staple", "192.0.2.1")
        .await;
    assert!(matches!(wrong, Err(PasswordChangeError::WrongPassword)));
    let short = h
        .auth
        .change_password(&this, "correct horse", "short", "192.0.2.1")
        .await;
    assert!(matches!(short, Err(PasswordChangeError::Rejected(_))));
    assert!(
        current(&h, &other_cookie).await,
        "refused changes revoke nothing"
    );

    let (session, new_cookie) = h
        .auth
        .change_password(&this, "correct horse", "battery staple", "192.0.2.1")
        .await
        .unwrap();
    assert_eq!(session.customer_id, h.customer);
    assert!(
        current(&h, &new_cookie).await,
        "this browser stays signed in"
    );
    assert!(
        !current(&h, &other_cookie).await,
        "every other session ends"
    );
    assert!(!h.works_on_mcp(tokens.access_token.expose()).await);
    assert_eq!(
        code_of(
            &h.refresh(&client, tokens.refresh_token.expose())
                .await
                .err()
                .unwrap()
        ),
        "invalid_grant"
    );
    assert!(matches!(
        h.auth
            .login("ada@example.com", "correct horse", "192.0.2.1")
            .await,
        Err(LoginError::Invalid)
    ));
    assert!(
        h.auth
            .login("ada@example.com", "battery staple", "192.0.2.1")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn closed_sign_up_does_nothing() {
    let (h, mailer) = harness(|_| {}).await;
    assert!(!h.auth.signup_open());
    assert!(matches!(
        h.auth
            .signup("new@example.com", "long enough", "192.0.2.1")
            .await,
        Err(SignupError::Closed)
    ));
    assert!(matches!(
        h.auth.request_reset("ada@example.com", "192.0.2.1").await,
        Err(SignupError::Closed)
    ));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(mailer.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn sign_up_mails_a_single_use_link_that_creates_the_account() {
    let (h, mailer) = harness(open).await;
    h.auth
        .signup(" New@Example.com ", "long enough", "192.0.2.1")
        .await
        .unwrap();
    let sent = mailer.wait_for(1).await;
    assert_eq!(sent[0].to, "new@example.com");
    let token = link_token(&sent[0], "/signup/verify/");
    assert!(
        sent[0]
            .text
            .contains(&format!("{PUBLIC}/signup/verify/{token}")),
        "links use the public URL"
    );
    let email = squaremcp_core::Email::parse("new@example.com").unwrap();
    assert!(
        h.auth
            .gateway()
            .store()
            .customer_by_email(&email)
            .await
            .unwrap()
            .is_none(),
        "no account before the link is used"
    );
    assert!(matches!(
        h.auth
            .login("new@example.com", "long enough", "192.0.2.1")
            .await,
        Err(LoginError::Invalid)
    ));

    let customer = h.auth.verify_signup(&token).await.unwrap();
    assert_eq!(customer.plan.as_str(), "free");
    assert!(
        matches!(
            h.auth.verify_signup(&token).await,
            Err(SignupError::InvalidLink)
        ),
        "single use"
    );
    assert!(
        h.auth
            .login("new@example.com", "long enough", "192.0.2.1")
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn sign_up_links_expire_and_bad_input_is_refused() {
    let (h, mailer) = harness(open).await;
    assert!(matches!(
        h.auth
            .signup("not an email", "long enough", "192.0.2.1")
            .await,
        Err(SignupError::InvalidEmail)
    ));
    assert!(matches!(
        h.auth.signup("x@example.com", "short", "192.0.2.1").await,
        Err(SignupError::Rejected(_))
    ));
    assert!(matches!(
        h.auth.verify_signup("../../etc").await,
        Err(SignupError::InvalidLink)
    ));
    h.auth
        .signup("late@example.com", "long enough", "192.0.2.1")
        .await
        .unwrap();
    let token = link_token(&mailer.wait_for(1).await[0], "/signup/verify/");
    h.advance(3600);
    assert!(matches!(
        h.auth.verify_signup(&token).await,
        Err(SignupError::InvalidLink)
    ));
}

#[tokio::test]
async fn sign_up_of_a_known_address_answers_the_same_and_mails_a_notice() {
    let (h, mailer) = harness(open).await;
    h.auth
        .signup("ada@example.com", "another password", "192.0.2.1")
        .await
        .unwrap();
    let sent = mailer.wait_for(1).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "ada@example.com");
    assert!(
        sent[0].subject.contains("already have"),
        "{}",
        sent[0].subject
    );
    assert!(!sent[0].text.contains("/signup/verify/"));
    assert!(
        h.auth
            .login("ada@example.com", "correct horse", "192.0.2.1")
            .await
            .is_ok(),
        "the account is untouched"
    );
}

#[tokio::test]
async fn sign_up_and_reset_requests_are_rate_limited_per_email_and_per_ip() {
    let (h, _) = harness(|s| {
        open(s);
        s.signup.requests_per_email_per_hour = 2;
        s.signup.requests_per_ip_per_hour = 3;
    })
    .await;
    for _ in 0..2 {
        h.auth
            .request_reset("ada@example.com", "192.0.2.1")
            .await
            .unwrap();
    }
    assert!(
        matches!(
            h.auth.request_reset("ada@example.com", "192.0.2.2").await,
            Err(SignupError::RateLimited)
        ),
        "per email"
    );
    h.auth
        .request_reset("bob@example.com", "192.0.2.1")
        .await
        .unwrap();
    assert!(
        matches!(
            h.auth.request_reset("eve@example.com", "192.0.2.1").await,
            Err(SignupError::RateLimited)
        ),
        "per IP"
    );
    h.advance(3600);
    assert!(
        h.auth
            .request_reset("ada@example.com", "192.0.2.1")
            .await
            .is_ok(),
        "a new hour"
    );
}

#[tokio::test]
async fn a_reset_link_is_single_use_expires_and_revokes_every_session_and_grant() {
    let (h, mailer) = harness(open).await;
    let (client, _) = h.register("none").await;
    let old_cookie = cookie(&h, "correct horse").await;
    let tokens = h
        .exchange(&client, &h.code(&client).await, Some(VERIFIER))
        .await
        .unwrap();

    h.auth
        .request_reset("nobody@example.com", "192.0.2.1")
        .await
        .unwrap();
    h.auth
        .request_reset("ada@example.com", "192.0.2.1")
        .await
        .unwrap();
    let sent = mailer.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        mailer.0.lock().unwrap().len(),
        1,
        "an unknown address gets nothing"
    );
    assert_eq!(sent[0].to, "ada@example.com");
    let token = link_token(&sent[0], "/reset/");

    assert!(matches!(
        h.auth.reset_password(&token, "short").await,
        Err(SignupError::Rejected(_))
    ));
    assert!(
        current(&h, &old_cookie).await,
        "a refused password uses nothing up"
    );
    assert_eq!(
        h.auth
            .reset_password(&token, "battery staple")
            .await
            .unwrap(),
        h.customer
    );
    assert!(
        matches!(
            h.auth.reset_password(&token, "battery staple 2").await,
            Err(SignupError::InvalidLink)
        ),
        "single use"
    );
    assert!(!current(&h, &old_cookie).await);
    assert!(!h.works_on_mcp(tokens.access_token.expose()).await);
    assert_eq!(
        code_of(
            &h.refresh(&client, tokens.refresh_token.expose())
                .await
                .err()
                .unwrap()
        ),
        "invalid_grant"
    );
    assert!(
        h.auth
            .login("ada@example.com", "battery staple", "192.0.2.1")
            .await
            .is_ok()
    );

    // Expiry, and a link issued before a later change is void.
    h.auth
        .request_reset("ada@example.com", "192.0.2.1")
        .await
        .unwrap();
    h.auth
        .request_reset("ada@example.com", "192.0.2.1")
        .await
        .unwrap();
    let sent = mailer.wait_for(3).await;
    let (first, second) = (
        link_token(&sent[1], "/reset/"),
        link_token(&sent[2], "/reset/"),
    );
    h.auth
        .reset_password(&first, "third password")
        .await
        .unwrap();
    assert!(matches!(
        h.auth.reset_password(&second, "fourth password").await,
        Err(SignupError::InvalidLink)
    ));
    h.auth
        .request_reset("ada@example.com", "192.0.2.1")
        .await
        .unwrap();
    let expiring = link_token(&mailer.wait_for(4).await[3], "/reset/");
    h.advance(3600);
    assert!(matches!(
        h.auth.reset_password(&expiring, "fifth password").await,
        Err(SignupError::InvalidLink)
    ));
}

#[tokio::test]
async fn a_disabled_account_gets_no_reset_link() {
    let (h, mailer) = harness(open).await;
    standing::disable(
        h.auth.gateway().store(),
        h.auth.gateway().now(),
        &h.customer,
    )
    .await
    .unwrap();
    h.auth
        .request_reset("ada@example.com", "192.0.2.1")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(mailer.0.lock().unwrap().is_empty());
}

/// With an answer floor (a Lambda): the mail is sent before the answer, and every request,
/// mail or not, takes the floor, so that a known address does not answer at another pace.
#[tokio::test]
async fn with_an_answer_floor_mail_goes_out_before_the_answer_and_every_answer_takes_the_floor() {
    const FLOOR: Duration = Duration::from_millis(300);
    let (h, mailer) = harness(|settings| {
        open(settings);
        settings.signup.answer_floor = Some(FLOOR);
    })
    .await;
    let started = std::time::Instant::now();
    h.auth.request_reset("nobody@example.com", "192.0.2.1").await.unwrap();
    assert!(started.elapsed() >= FLOOR, "an unknown address waits the floor too: {:?}", started.elapsed());
    assert!(mailer.0.lock().unwrap().is_empty());

    let started = std::time::Instant::now();
    h.auth.request_reset("ada@example.com", "192.0.2.1").await.unwrap();
    assert!(started.elapsed() >= FLOOR, "{:?}", started.elapsed());
    // Already sent when the request answered: no background task to wait for.
    assert_eq!(mailer.0.lock().unwrap().len(), 1);
}
