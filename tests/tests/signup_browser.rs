//! Sign-up and password reset in headless Chromium with JavaScript off, against the real
//! `squaremcp serve` and a real SMTP server: the login page links to both, sign-up mails a link
//! that creates the account, the new customer signs in; a reset link sets a new password and the
//! old browser session ends. Screenshots land in `target/artifacts/signup/` (apart from account_browser's folder, which that test empties).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use squaremcp_tests::oauth::Browser;
use squaremcp_tests::{Server, SmtpSink, TempDir, node_dir};

const EMAIL: &str = "hopper@example.com";
const PASSWORD: &str = "compiler first";
const NEW_PASSWORD: &str = "nanosecond wire";

/// The first link under `path` mailed to `to`, waiting for it.
fn mailed_link(smtp: &SmtpSink, to: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for message in smtp.messages() {
            let message = message
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            if !message
                .lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
            {
                continue;
            }
            if let Some(start) = message.find(path) {
                let url_start = message[..start].rfind("http").unwrap();
                let end = start + path.len();
                let token: String = message[end..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                return format!("{}{token}", &message[url_start..end]);
            }
        }
        assert!(Instant::now() < deadline, "no {path} link mailed to {to}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_step(artifacts: &Path, args: &[&str]) -> Value {
    let out = Command::new("node")
        .current_dir(node_dir())
        .arg("signup-client.mjs")
        .args(args.iter().take(2))
        .arg(artifacts)
        .args(&args[2..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "signup-client.mjs {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_and_reset_work_in_a_browser_without_javascript() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian chromium is missing: run scripts/test, which installs it"
    );
    let smtp = SmtpSink::start(0);
    let data = TempDir::new("signup-browser");
    let smtp_url = smtp.url();
    let server = Server::start(
        data.path(),
        &[
            ("SQUAREMCP_SIGNUP", "open"),
            ("SQUAREMCP_SMTP_URL", &smtp_url),
            ("SQUAREMCP_MAIL_FROM", "SquareMCP <accounts@squaremcp.test>"),
        ],
    );
    let artifacts: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts/signup");
    let _ = std::fs::remove_dir_all(&artifacts);

    let signup = run_step(&artifacts, &["signup", &server.base, EMAIL, PASSWORD]);
    assert_eq!(signup["signupForm"]["hasCsrf"], true, "{signup}");
    assert_eq!(signup["sent"]["status"], 200, "{signup}");
    assert!(
        signup["sent"]["text"]
            .as_str()
            .unwrap()
            .contains("Check your email"),
        "{signup}"
    );

    let link = mailed_link(&smtp, EMAIL, "/signup/verify/");
    assert!(
        link.starts_with(&format!("{}/signup/verify/", server.base)),
        "links use the public URL: {link}"
    );
    let verified = run_step(
        &artifacts,
        &["verify", &server.base, &link, EMAIL, PASSWORD],
    );
    assert_eq!(verified["verified"]["status"], 200, "{verified}");
    assert!(
        verified["verified"]["text"]
            .as_str()
            .unwrap()
            .contains("Your account is ready"),
        "{verified}"
    );
    assert!(
        verified["account"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/account"),
        "{verified}"
    );
    assert!(
        verified["account"]["text"]
            .as_str()
            .unwrap()
            .contains(EMAIL),
        "{verified}"
    );

    // A session from before the reset, in another client.
    let mut old = Browser::new(&server.base);
    assert_eq!(old.login(EMAIL, PASSWORD, "/account").await.status, 303);
    assert_eq!(old.get("/account").await.status, 200);

    let reset = run_step(&artifacts, &["reset", &server.base, EMAIL]);
    assert_eq!(reset["sent"]["status"], 200, "{reset}");
    let link = mailed_link(&smtp, EMAIL, "/reset/");
    let changed = run_step(
        &artifacts,
        &["newpassword", &server.base, &link, EMAIL, NEW_PASSWORD],
    );
    assert_eq!(changed["changed"]["status"], 200, "{changed}");
    assert!(
        changed["account"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/account"),
        "signed in with the new password: {changed}"
    );
    assert_eq!(
        old.get("/account").await.status,
        303,
        "the session from before the reset ended"
    );

    for name in [
        "login-with-signup",
        "signup",
        "signup-sent",
        "signup-confirm",
        "signup-verified",
        "account-after-signup",
        "reset",
        "reset-sent",
        "reset-new-password",
        "reset-done",
    ] {
        for suffix in ["", "-mobile"] {
            let file = artifacts.join(format!("{name}{suffix}.png"));
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(size > 5_000, "{} is missing or empty", file.display());
        }
    }
}
