//! One line per platform: its mock, and a credential made of canaries (strings that must never
//! appear in a log or a result).

use squaremcp_core::Platform;
use squaremcp_platform_mocks::{Fault, Mock, PlatformMock, discord, linkedin, meta, snapchat, telegram, tiktok, whatsapp, x};
use squaremcp_platforms::kit::{PlatformEntry, origin};
use serde_json::{Value, json};

pub struct Fixture {
    mock: Box<dyn Control>,
    pub credential: Value,
    pub canaries: Vec<String>,
}

impl Fixture {
    /// Why the HTTP behaviour checks (a mock's answers, injected faults, an echoed credential) do
    /// not apply to this platform, when it is not an HTTP API; `None` for every HTTP platform.
    pub fn not_http(&self) -> Option<&'static str> {
        self.mock.not_http()
    }

    pub fn origin(&self, entry: &PlatformEntry) -> String {
        origin(entry.origin, Some(self.mock.base_url())).expect("a mock origin")
    }

    pub fn fail_always(&self, fault: Fault) {
        self.mock.fail_always(fault);
    }

    /// Requests the mock received so far (0 for a platform without one).
    pub fn request_count(&self) -> u64 {
        self.mock.request_count()
    }

    pub fn recover(&self) {
        self.mock.recover();
    }
}

pub async fn start(platform: Platform) -> Fixture {
    match platform {
        Platform::Telegram => {
            let secret = "CANARYtelegram_0123456789abcdefghijkXYZ";
            let token = format!("7000000001:{secret}");
            let mock = Mock::start(telegram::Telegram::accepting(&[&token])).await;
            Fixture { mock: Box::new(mock), credential: json!({ "bot_token": token }), canaries: vec![secret.to_owned()] }
        }
        Platform::Discord => {
            let token = "MTA5CANARYdiscord.GhIjKl.0123456789abcdefghijklmnopqrstuvwxyz12";
            let mock = Mock::start(discord::Discord::accepting(&[token])).await;
            Fixture { mock: Box::new(mock), credential: json!({ "bot_token": token }), canaries: vec![token.to_owned()] }
        }
        Platform::Whatsapp => {
            let token = "EAAGCANARYwhatsapp0123456789abcdefghijklmnopqrstuvwxyz";
            let mock = Mock::start(whatsapp::Whatsapp::accepting(&[token])).await;
            let credential = json!({ "access_token": token, "phone_number_id": whatsapp::PHONE_NUMBER_ID, "waba_id": whatsapp::WABA_ID });
            Fixture { mock: Box::new(mock), credential, canaries: vec![token.to_owned()] }
        }
        Platform::Email => {
            // Hosts on loopback: with the default network policy every tool must refuse them
            // before anything is sent, and the canary password must never show.
            let password = "CANARYemail-app-password-0123456789";
            let credential = json!({ "address": "canary@example.test", "password": password, "imap_host": "127.0.0.1",
                "imap_security": "none", "smtp_host": "127.0.0.1", "smtp_security": "none" });
            let why = "IMAP and SMTP, not HTTP: the end-to-end tests (tests/tests/email.rs) run every tool against a real \
                       Dovecot and SMTP server; here each tool must refuse a loopback server under the default policy";
            Fixture { mock: Box::new(NotHttp(why)), credential, canaries: vec![password.to_owned()] }
        }
        Platform::Obsidian => {
            // An S3 vault whose endpoint is on loopback: with the default network policy every
            // tool must refuse it before anything is sent, and the canary key must never show.
            let secret = "CANARYobsidian-s3-secret-0123456789abcdef";
            let credential = json!({ "bucket": "notes", "prefix": "vault/", "region": "us-east-1", "endpoint": "http://127.0.0.1:9",
                "access_key_id": "AKIACANARYOBSIDIAN", "secret_access_key": secret });
            let why = "a vault of files, not an HTTP API: shared/platforms/tests/obsidian and tests/tests/obsidian.rs run every \
                       tool on a directory vault and on the emulator's S3; here each tool must refuse a loopback endpoint under \
                       the default policy";
            Fixture { mock: Box::new(NotHttp(why)), credential, canaries: vec![secret.to_owned()] }
        }
        Platform::Twitter => {
            let token = "CANARYx-access-0123456789abcdefghijklmnop";
            let mock = Mock::start(x::X::accepting(&[token])).await;
            let credential = json!({ "access_token": token, "refresh_token": "CANARYx-refresh-0123456789", "expires_at": 4_102_444_800_i64 });
            Fixture { mock: Box::new(mock), credential, canaries: vec![token.to_owned(), "CANARYx-refresh-0123456789".to_owned()] }
        }
        Platform::Facebook => {
            let token = "EAAGCANARYfacebook0123456789abcdefghijklmnopqrstuvwxyz";
            let mock = Mock::start(meta::Meta::accepting(&[token])).await;
            let credential = json!({ "page_id": meta::PAGE_ID, "access_token": token });
            Fixture { mock: Box::new(mock), credential, canaries: vec![token.to_owned()] }
        }
        Platform::Instagram => {
            let token = "IGAACANARYinstagram0123456789abcdefghijklmnopqrstuvwxyz";
            let mock = Mock::start(meta::Meta::accepting(&[token])).await;
            let credential = json!({ "login": "instagram", "ig_user_id": meta::IG_USER_ID, "access_token": token });
            Fixture { mock: Box::new(mock), credential, canaries: vec![token.to_owned()] }
        }
        Platform::Linkedin => {
            let token = "AQXCANARYlinkedin0123456789abcdefghijklmnopqrstuvwxyz";
            let mock = Mock::start(linkedin::Linkedin::accepting(&[token])).await;
            let credential = json!({ "access_token": token, "expires_at": 4_102_444_800_i64, "account": {"id": linkedin::PERSON_ID} });
            Fixture { mock: Box::new(mock), credential, canaries: vec![token.to_owned()] }
        }
        Platform::Tiktok => {
            let token = "act.CANARYtiktok0123456789abcdefghijklmnopqrstuvwxyz";
            let mock = Mock::start(tiktok::Tiktok::accepting(&[token])).await;
            let credential = json!({ "access_token": token, "refresh_token": "rft.CANARYtiktok-refresh-0123456789", "expires_at": 4_102_444_800_i64 });
            Fixture { mock: Box::new(mock), credential, canaries: vec![token.to_owned(), "rft.CANARYtiktok-refresh-0123456789".to_owned()] }
        }
        Platform::Snapchat => {
            let token = "eyJCANARYsnapchat0123456789abcdefghijklmnopqrstuvwxyz";
            let mock = Mock::start(snapchat::Snapchat::accepting(&[token])).await;
            let credential = json!({ "access_token": token, "refresh_token": "CANARYsnap-refresh-0123456789", "expires_at": 4_102_444_800_i64 });
            Fixture { mock: Box::new(mock), credential, canaries: vec![token.to_owned(), "CANARYsnap-refresh-0123456789".to_owned()] }
        }
        // Every platform has a case today; the arm stays for the next one.
        #[allow(unreachable_patterns)]
        other => panic!("{other} is registered but has no contract fixture: add its mock and credential here"),
    }
}

/// The arguments a tool is called with instead of its schema's required ones, for tools whose
/// arguments are required together rather than one by one (the sampled ones would be refused).
pub fn arguments(tool: &str) -> Option<serde_json::Map<String, Value>> {
    let arguments = match tool {
        // Text or media: neither is required alone.
        "twitter_create_tweet" => json!({"text": "contract"}),
        // A message or a link: neither is required alone.
        "facebook_create_post" => json!({"message": "contract"}),
        // The gateway uploads the bytes itself, so the sampled public URL cannot serve: inline data.
        "twitter_upload_video" => json!({"media_data": "AAAAIGZ0eXBpc29t", "media_type": "video/mp4"}),
        // Text only (an attachment is optional); the gateway uploads LinkedIn's media itself.
        "linkedin_create_post" => json!({"text": "contract"}),
        "linkedin_upload_video" => json!({"media_data": "AAAAGGZ0eXBtcDQyAAAAAG1wNDJpc29t", "media_type": "video/mp4"}),
        // A direct post needs the privacy level and a video (file or URL), each optional alone.
        "tiktok_create_video" => json!({"privacy_level": "SELF_ONLY", "media_data": "AAAAGGZ0eXBtcDQyAAAAAG1wNDJpc29t", "media_type": "video/mp4"}),
        _ => return None,
    };
    arguments.as_object().cloned()
}

trait Control: Send + Sync {
    fn base_url(&self) -> &str;
    fn request_count(&self) -> u64 {
        0
    }
    fn fail_always(&self, fault: Fault);
    fn recover(&self);
    /// The explicit flag for a platform that is not an HTTP API: why the mock checks skip it.
    fn not_http(&self) -> Option<&'static str> {
        None
    }
}

/// The stand-in for a platform without an HTTP API (email): no mock to control, and the reason.
struct NotHttp(&'static str);

impl Control for NotHttp {
    fn base_url(&self) -> &str {
        ""
    }

    fn fail_always(&self, _fault: Fault) {}

    fn recover(&self) {}

    fn not_http(&self) -> Option<&'static str> {
        Some(self.0)
    }
}

impl<P: PlatformMock> Control for Mock<P> {
    fn base_url(&self) -> &str {
        Mock::base_url(self)
    }

    fn request_count(&self) -> u64 {
        Mock::request_count(self)
    }

    fn fail_always(&self, fault: Fault) {
        Mock::fail_always(self, fault);
    }

    fn recover(&self) {
        Mock::recover(self);
    }
}
