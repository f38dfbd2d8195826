//! Issue 17, item 6: limits that slow attackers down without locking real users out. Sign-in
//! waits grow per (email, client network); registrations and client document fetches are
//! limited per client network (IPv6 per /64) and overall.

use super::*;

fn wait_of(outcome: Result<(Session, Secret<String>), LoginError>) -> u64 {
    match outcome {
        Err(LoginError::RateLimited { retry_after }) => retry_after,
        Err(other) => panic!("expected a wait, got {other:?}"),
        Ok(_) => panic!("expected a wait, got a session"),
    }
}

#[tokio::test]
async fn each_attempt_past_the_free_ones_waits_twice_as_long() {
    let h = Harness::new().await;
    let attacker = "203.0.113.50";
    for _ in 0..3 {
        assert!(matches!(
            h.auth.login("ada@example.com", "guess", attacker).await,
            Err(LoginError::Invalid)
        ));
    }
    for expected in [2, 4, 8, 16] {
        assert_eq!(
            wait_of(h.auth.login("ada@example.com", "guess", attacker).await),
            expected
        );
        h.advance(i64::try_from(expected).unwrap() - 1);
        assert_eq!(
            wait_of(h.auth.login("ada@example.com", "guess", attacker).await),
            1,
            "a second before it opens"
        );
        h.advance(1);
        assert!(matches!(
            h.auth.login("ada@example.com", "guess", attacker).await,
            Err(LoginError::Invalid)
        ));
    }
    // All the while, the customer signs in from their own network at once, even mistyping first.
    let customer = "192.0.2.44";
    assert!(matches!(
        h.auth.login("ada@example.com", "typo", customer).await,
        Err(LoginError::Invalid)
    ));
    assert!(
        h.auth
            .login("ada@example.com", "correct horse", customer)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_right_password_after_waiting_signs_in_and_forgives_the_failures() {
    let h = Harness::new().await;
    let ip = "203.0.113.60";
    for _ in 0..3 {
        assert!(matches!(
            h.auth.login("ada@example.com", "typo", ip).await,
            Err(LoginError::Invalid)
        ));
    }
    assert_eq!(
        wait_of(h.auth.login("ada@example.com", "correct horse", ip).await),
        2,
        "the right password waits too"
    );
    h.advance(2);
    assert!(
        h.auth
            .login("ada@example.com", "correct horse", ip)
            .await
            .is_ok()
    );
    // Forgiven: three free attempts again, then the wait starts over at 2 s.
    for _ in 0..3 {
        assert!(matches!(
            h.auth.login("ada@example.com", "typo", ip).await,
            Err(LoginError::Invalid)
        ));
    }
    assert_eq!(
        wait_of(h.auth.login("ada@example.com", "typo", ip).await),
        2
    );
}

/// Item 1's property at the gate: of many guesses arriving when it opens, one goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_at_an_open_gate_get_one_turn() {
    let h = Arc::new(Harness::new().await);
    let ip = "203.0.113.70";
    for _ in 0..3 {
        assert!(matches!(
            h.auth.login("ada@example.com", "guess", ip).await,
            Err(LoginError::Invalid)
        ));
    }
    h.advance(2);
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let h = h.clone();
        logins.spawn(async move { h.auth.login("ada@example.com", "guess", ip).await });
    }
    let mut verdicts = 0;
    while let Some(outcome) = logins.join_next().await {
        match outcome.unwrap() {
            Err(LoginError::Invalid) => verdicts += 1,
            Err(LoginError::RateLimited { .. }) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(verdicts, 1, "one guess per opening");
}

#[tokio::test]
async fn an_ipv6_guesser_cannot_rotate_addresses_within_its_64() {
    let h = Harness::new().await;
    for host in 1..=3 {
        let ip = format!("2001:db8:5:6::{host}");
        assert!(matches!(
            h.auth.login("ada@example.com", "guess", &ip).await,
            Err(LoginError::Invalid)
        ));
    }
    assert_eq!(
        wait_of(
            h.auth
                .login("ada@example.com", "guess", "2001:db8:5:6:ffff::9")
                .await
        ),
        2
    );
    assert!(
        h.auth
            .login("ada@example.com", "correct horse", "2001:db8:5:7::1")
            .await
            .is_ok(),
        "another /64"
    );
}

#[tokio::test]
async fn one_network_is_limited_across_emails() {
    let h = Harness::with(|s| s.login_failures_per_ip = 4).await;
    let ip = "203.0.113.80";
    for _ in 0..3 {
        assert!(matches!(
            h.auth.login("ada@example.com", "guess", ip).await,
            Err(LoginError::Invalid)
        ));
    }
    assert!(matches!(
        h.auth.login("nobody@example.com", "guess", ip).await,
        Err(LoginError::Invalid)
    ));
    // A fresh email, but the network has used its budget for this 15-minute window.
    let wait = wait_of(h.auth.login("someone@example.com", "guess", ip).await);
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(
        h.auth
            .login("ada@example.com", "correct horse", "203.0.113.81")
            .await
            .is_ok()
    );
    h.advance(i64::try_from(wait).unwrap());
    assert!(
        matches!(
            h.auth.login("someone@example.com", "guess", ip).await,
            Err(LoginError::Invalid)
        ),
        "the window moved on"
    );
}

#[tokio::test]
async fn a_password_change_is_throttled_like_a_sign_in() {
    let h = Harness::new().await;
    let ip = "203.0.113.90";
    let session = h.session().await;
    for _ in 0..3 {
        let outcome = h
            .auth
            .change_password(&session, "wrong current", "new password 1", ip)
            .await;
        assert!(
            matches!(outcome, Err(crate::PasswordChangeError::WrongPassword)),
            "{outcome:?}"
        );
    }
    let outcome = h
        .auth
        .change_password(&session, "correct horse", "new password 1", ip)
        .await;
    assert!(
        matches!(
            outcome,
            Err(crate::PasswordChangeError::RateLimited { retry_after: 2 })
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn registrations_are_limited_per_ipv6_64_and_overall() {
    let h = Harness::with(|s| s.registrations_per_hour = 8).await;
    let body = json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
    for host in 1..=5 {
        h.auth
            .register_client(&body, &format!("2001:db8:9:1::{host}"))
            .await
            .unwrap();
    }
    let refused = h
        .auth
        .register_client(&body, "2001:db8:9:1:abcd::1")
        .await
        .err()
        .unwrap();
    assert!(
        matches!(refused, OAuthError::TooManyRequests { retry_after } if (1..=3600).contains(&retry_after)),
        "{refused:?}"
    );
    assert_eq!(refused.code(), "temporarily_unavailable");
    for ip in ["2001:db8:9:2::1", "198.51.100.20", "198.51.100.21"] {
        h.auth.register_client(&body, ip).await.unwrap();
    }
    // Eight in total this hour: the overall cap holds for a new network too.
    assert!(matches!(
        h.auth.register_client(&body, "198.51.100.22").await,
        Err(OAuthError::TooManyRequests { .. })
    ));
    h.advance(3600);
    assert!(h.auth.register_client(&body, "198.51.100.22").await.is_ok());
}

#[test]
fn the_default_overall_registration_cap_is_no_switch() {
    let settings = AuthSettings::new(PUBLIC);
    // A few addresses at their own limit must not be able to use up everyone's.
    assert!(
        settings.registrations_per_hour >= 100 * settings.registrations_per_ip_per_hour,
        "{settings:?}"
    );
}
