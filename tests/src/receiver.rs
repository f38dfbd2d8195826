//! The outbound-webhook receiver of the end-to-end tests (tests/webhook_receiver.py, which
//! verifies every delivery with the published Standard Webhooks library and de-duplicates on
//! `webhook-id`), and the queues outbound webhooks need on each backend.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{cli_json_with_env, free_port, on_dynamodb};

pub struct Receiver {
    child: Child,
    pub base: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".tools/webhooks/bin/python");
        assert!(
            python.exists(),
            "{} is missing: scripts/test installs standardwebhooks there",
            python.display()
        );
        let port = free_port();
        let child = Command::new(python)
            .arg(root.join("tests/webhook_receiver.py"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the receiver");
        let receiver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/_state", receiver.base))
                .await
                .is_ok()
            {
                return receiver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the receiver did not start");
    }

    /// `/_secret` or `/_mode`.
    pub async fn control(&self, path: &str, body: Value) {
        let status = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204);
    }

    /// `{"events": {id: event}, "requests": {id: n}, "rejected": n}`.
    pub async fn state(&self) -> Value {
        reqwest::get(format!("{}/_state", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `check` holds on the receiver's state, or panics with it.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(what, Duration::from_secs(30), check)
            .await
    }

    pub async fn wait_for_within(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let state = self.state().await;
            if check(&state) {
                return state;
            }
            assert!(Instant::now() < deadline, "{what}: {state}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// On DynamoDB, the queues on the SQS emulator, named after this run's data directory (`init`
/// makes them); on SQLite none (the in-process queues).
pub fn queues(dir: &Path) -> Vec<(String, String)> {
    if !on_dynamodb() {
        return Vec::new();
    }
    let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
    let made = cli_json_with_env(
        dir,
        &[
            "init",
            "--retry-queue",
            &format!("e2e-{name}-retry"),
            "--dead-letter-queue",
            &format!("e2e-{name}-dlq"),
        ],
        "",
        &[],
    );
    vec![
        (
            "SQUAREMCP_RETRY_QUEUE_URL".into(),
            made["retry_queue_url"].as_str().unwrap().to_owned(),
        ),
        (
            "SQUAREMCP_DEAD_LETTER_QUEUE_URL".into(),
            made["dead_letter_queue_url"].as_str().unwrap().to_owned(),
        ),
    ]
}
