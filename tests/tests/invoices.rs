//! Monthly invoices end to end: the real CLI and server, a real SMTP server (aiosmtpd), a test
//! clock (`SQUAREMCP_NOW`). Repeating, overlapping and killed runs still send one invoice email
//! per customer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_tests::{Server, SmtpSink, TempDir, binary, cli_json_with_env, cli_with_env};

const TOKEN: &str = "666666666:AAHinvoice_token_abcdefghijklmnopqrst";
const PLANS: &str = "[plans.free]\nmonthly_calls = 100\nprice_cents = 0\n\n[plans.pro]\nmonthly_calls = 2\nprice_cents = 1900\noverage_cents = 5\n\n[plans.business]\nmonthly_calls = 1000\nprice_cents = 9900\noverage_cents = 1\n";
const DURING_OCTOBER: &str = "2026-10-15T12:00:00Z";
const CLOSING: &str = "2026-11-01T06:00:00Z";

struct Setup {
    data: TempDir,
    plans: String,
}

impl Setup {
    fn new(label: &str) -> Self {
        let data = TempDir::new(label);
        let plans = data.path().join("plans.toml");
        std::fs::write(&plans, PLANS).unwrap();
        Self { plans: plans.to_str().unwrap().to_owned(), data }
    }

    fn env<'a>(&'a self, now: &'a str, smtp: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![("SQUAREMCP_PLANS", self.plans.as_str()), ("SQUAREMCP_NOW", now), ("SQUAREMCP_SMTP_URL", smtp), ("SQUAREMCP_MAIL_FROM", "SquareMCP Billing <billing@squaremcp.test>")]
    }

    fn customer(&self, email: &str, plan: &str) -> String {
        let env = self.env(DURING_OCTOBER, "smtp://127.0.0.1:9");
        cli_json_with_env(self.data.path(), &["customers", "create", "--email", email, "--plan", plan], "", &env)["id"].as_str().unwrap().to_owned()
    }

    fn run(&self, month: &str, now: &str, smtp: &str) -> std::process::Output {
        cli_with_env(self.data.path(), &["invoices", "run", "--month", month, "--json"], "", &self.env(now, smtp))
    }
}

/// A header's value, unfolded: a long header (an invoice subject with a whole customer id) is
/// continued on lines that start with white space (RFC 5322 §2.2.3).
fn header(message: &str, name: &str) -> Option<String> {
    let mut unfolded: Vec<String> = Vec::new();
    for line in message.lines().take_while(|l| !l.is_empty()) {
        match unfolded.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => unfolded.push(line.to_owned()),
        }
    }
    unfolded.into_iter().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

fn recipients(messages: &[String]) -> Vec<String> {
    messages.iter().map(|m| header(m, "To").unwrap_or_default()).collect()
}

/// Tool calls counted in October, made through the real server with the clock set in October.
async fn october_calls(setup: &Setup, customer: &str, calls: usize) {
    let telegram = Mock::start(Telegram::accepting(&[TOKEN])).await;
    cli_json_with_env(setup.data.path(), &["credentials", "set", "--customer", customer, "--platform", "telegram"], &json!({"bot_token": TOKEN}).to_string(), &[]);
    let key = cli_json_with_env(setup.data.path(), &["api-keys", "create", "--customer", customer], "", &[])["key"].as_str().unwrap().to_owned();
    let server = Server::start(setup.data.path(), &[("SQUAREMCP_TELEGRAM_BASE_URL", telegram.base_url()), ("SQUAREMCP_PLANS", &setup.plans), ("SQUAREMCP_NOW", DURING_OCTOBER)]);
    let http = reqwest::Client::new();
    for _ in 0..calls {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "telegram_get_me"}});
        let result: Value = http.post(server.mcp_url()).header("x-api-key", &key).json(&body).send().await.unwrap().json().await.unwrap();
        assert_eq!(result["result"]["isError"], false, "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_are_computed_stored_once_and_emailed_once() {
    let setup = Setup::new("invoices");
    let smtp = SmtpSink::start(0);
    let ada = setup.customer("ada@example.com", "pro");
    setup.customer("bob@example.com", "free");
    let cy = setup.customer("cy@example.com", "free");
    setup.customer("dee@example.com", "business");
    october_calls(&setup, &ada, 3).await;
    october_calls(&setup, &cy, 2).await;

    let early = setup.run("2026-10", DURING_OCTOBER, &smtp.url());
    assert_eq!(early.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&early.stderr).contains("2026-10 is not over yet"));

    let first = setup.run("2026-10", CLOSING, &smtp.url());
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let report: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(report["report"]["emails_sent"], 3, "{report}");
    let messages = smtp.messages();
    let to: BTreeSet<String> = recipients(&messages).into_iter().collect();
    assert_eq!(to, BTreeSet::from(["ada@example.com".to_owned(), "cy@example.com".to_owned(), "dee@example.com".to_owned()]), "a free plan without usage gets no invoice");

    let ada_mail = messages.iter().find(|m| header(m, "To").as_deref() == Some("ada@example.com")).unwrap();
    let number = format!("SQM-202610-{ada}");
    assert_eq!(header(ada_mail, "Subject"), Some(format!("Your SquareMCP invoice {number} for 2026-10")));
    assert_eq!(header(ada_mail, "Message-ID"), Some(format!("<{number}@squaremcp.invoice>")));
    assert!(header(ada_mail, "Content-Type").is_some_and(|c| c.starts_with("multipart/alternative")));
    assert!(ada_mail.contains("Total: $19.05 USD"), "base $19.00 + one call over 2 at 5 cents:\n{ada_mail}");
    assert!(ada_mail.contains("data-total-cents=3D\"1905\"") || ada_mail.contains("data-total-cents=\"1905\""), "{ada_mail}");
    let dee_mail = messages.iter().find(|m| header(m, "To").as_deref() == Some("dee@example.com")).unwrap();
    assert!(dee_mail.contains("Total: $99.00 USD"), "{dee_mail}");
    let cy_mail = messages.iter().find(|m| header(m, "To").as_deref() == Some("cy@example.com")).unwrap();
    assert!(cy_mail.contains("Total: $0.00 USD") && cy_mail.contains("Tool calls counted: 2"), "{cy_mail}");

    let again = setup.run("2026-10", "2026-11-02T06:00:00Z", &smtp.url());
    assert!(again.status.success());
    assert_eq!(smtp.messages().len(), 3, "a second run sends nothing");
    let listed = cli_json_with_env(setup.data.path(), &["invoices", "list", "--month", "2026-10"], "", &setup.env(CLOSING, &smtp.url()));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|i| i["sent_at"].is_number()), "{listed:?}");
    let ada_invoice = listed.iter().find(|i| i["email"] == "ada@example.com").unwrap();
    assert_eq!((ada_invoice["total_cents"].as_u64(), ada_invoice["calls"].as_u64()), (Some(1905), Some(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_change_on_the_31st_leaves_the_month_on_its_plan() {
    let setup = Setup::new("plan-change");
    let smtp = SmtpSink::start(0);
    let ada = setup.customer("ada@example.com", "pro");
    october_calls(&setup, &ada, 3).await;
    let env = setup.env("2026-10-31T18:00:00Z", "smtp://127.0.0.1:9");
    let moved = cli_json_with_env(setup.data.path(), &["customers", "set-plan", "--customer", &ada, "--plan", "business"], "", &env);
    assert_eq!(moved["plan"], "business", "{moved}");

    let closed = setup.run("2026-10", CLOSING, &smtp.url());
    assert!(closed.status.success(), "{}", String::from_utf8_lossy(&closed.stderr));
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("Total: $19.05 USD"), "pro's $19.00 and one call over its 2 at 5 cents, not business:\n{}", messages[0]);
    let listed = cli_json_with_env(setup.data.path(), &["invoices", "list", "--month", "2026-10"], "", &setup.env(CLOSING, &smtp.url()));
    assert_eq!((listed[0]["plan"].as_str(), listed[0]["total_cents"].as_u64()), (Some("pro"), Some(1905)), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_send_is_retried_by_the_next_run_and_never_duplicated() {
    let setup = Setup::new("retry");
    for i in 0..3 {
        setup.customer(&format!("c{i}@example.com"), "pro");
    }
    let closed_port = squaremcp_tests::free_port();
    let failed = setup.run("2026-10", CLOSING, &format!("smtp://127.0.0.1:{closed_port}"));
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("3 invoice email(s) of 2026-10 are not sent yet"));
    let pending = cli_json_with_env(setup.data.path(), &["invoices", "list", "--month", "2026-10"], "", &setup.env(CLOSING, "smtp://127.0.0.1:9"));
    assert_eq!(pending.as_array().unwrap().len(), 3);
    assert!(pending.as_array().unwrap().iter().all(|i| i["sent_at"].is_null()), "unsent invoices stay pending");

    let smtp = SmtpSink::start(0);
    assert!(setup.run("2026-10", "2026-11-01T07:00:00Z", &smtp.url()).status.success());
    assert!(setup.run("2026-10", "2026-11-01T08:00:00Z", &smtp.url()).status.success());
    assert_eq!(recipients(&smtp.messages()).len(), 3, "each pending invoice is sent once");
}

fn spawn_run(setup: &Setup, now: &str, smtp: &str) -> std::process::Child {
    Command::new(binary("squaremcp"))
        .args(["invoices", "run", "--month", "2026-10", "--json"])
        .envs(setup.env(now, smtp))
        .env("SQUAREMCP_DATA_DIR", setup.data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_messages(smtp: &SmtpSink, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while smtp.messages().len() < count {
        assert!(Instant::now() < deadline, "only {} messages arrived", smtp.messages().len());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn many_customers(setup: &Setup, n: usize) {
    for i in 0..n {
        setup.customer(&format!("customer{i:02}@example.com"), "pro");
    }
}

fn assert_one_email_each(smtp: &SmtpSink, n: usize) {
    let to = recipients(&smtp.messages());
    let unique: BTreeSet<&String> = to.iter().collect();
    assert_eq!((to.len(), unique.len()), (n, n), "exactly one email per customer: {to:?}");
}

#[test]
fn two_runs_at_once_send_one_email_per_customer() {
    let setup = Setup::new("overlap");
    many_customers(&setup, 12);
    let smtp = SmtpSink::start(50);
    let first = spawn_run(&setup, CLOSING, &smtp.url());
    wait_for_messages(&smtp, 1);
    let second = spawn_run(&setup, CLOSING, &smtp.url()).wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(1), "the second run finds the lease taken");
    assert!(String::from_utf8_lossy(&second.stderr).contains("another invoice run for 2026-10 is in progress"));
    assert!(first.wait_with_output().unwrap().status.success());
    assert_one_email_each(&smtp, 12);
}

#[test]
fn a_killed_run_is_finished_by_the_next_one() {
    let setup = Setup::new("killed");
    many_customers(&setup, 20);
    // Each message takes 200 ms before the server accepts it; the kill lands mid-wait, not
    // between acceptance and the invoice being marked sent (see the closing note on that window).
    let smtp = SmtpSink::start(200);
    let mut run = spawn_run(&setup, CLOSING, &smtp.url());
    wait_for_messages(&smtp, 5);
    std::thread::sleep(Duration::from_millis(100));
    run.kill().unwrap();
    run.wait().unwrap();
    let sent_before = smtp.messages().len();
    assert!(sent_before < 20, "the run was killed midway ({sent_before} sent)");

    // Straight after, the dead run's lease still holds; once it has expired the next run resumes.
    let blocked = setup.run("2026-10", CLOSING, &smtp.url());
    assert!(String::from_utf8_lossy(&blocked.stderr).contains("in progress"), "{}", String::from_utf8_lossy(&blocked.stderr));
    let resumed = setup.run("2026-10", "2026-11-01T06:10:00Z", &smtp.url());
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_one_email_each(&smtp, 20);
}
