//! Helpers for end-to-end tests: run the real `squaremcp` binary (CLI and server) on a fresh
//! data directory. The platforms are the shared mocks of `squaremcp-platform-mocks`.
//!
//! The binaries must be built first (`cargo build --workspace --bins`); `scripts/test` does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod dovecot;
pub mod oauth;
pub mod receiver;

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A built binary of this workspace, next to the test executable's `deps/` folder.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it first with `cargo build --workspace --bins` (scripts/test does)", path.display());
    path
}

/// A fresh directory removed when dropped. With `SQUAREMCP_STORE=dynamodb` (and the AWS
/// endpoint variables pointing at emulators, as `scripts/test` sets them) it also stands for a
/// fresh DynamoDB table, created here with `squaremcp init`: the same tests then run on AWS's
/// backends. See [`backend_env`].
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let unique = format!("squaremcp-{label}-{}-{:016x}", std::process::id(), rand_u64());
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).unwrap();
        if on_dynamodb() {
            let out = cli(&path, &["init", "--retry-queue", "e2e-retry", "--dead-letter-queue", "e2e-dlq"], "");
            assert!(out.status.success(), "squaremcp init failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// Whether the tests run on DynamoDB, KMS and SQS (`SQUAREMCP_STORE=dynamodb`) rather than SQLite.
pub fn on_dynamodb() -> bool {
    std::env::var("SQUAREMCP_STORE").is_ok_and(|store| store == "dynamodb")
}

/// The variables that give `data_dir` its own backends: nothing for SQLite (the directory is
/// the store), a table named after the directory for DynamoDB.
pub fn backend_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    if !on_dynamodb() {
        return Vec::new();
    }
    let name = data_dir.file_name().and_then(|n| n.to_str()).expect("a named data directory");
    vec![("SQUAREMCP_TABLE", format!("e2e-{name}")), ("SQUAREMCP_KMS_KEY_ID", "alias/squaremcp-e2e".to_owned())]
}

/// Runs `squaremcp <args>` on `data_dir`, with `stdin` piped in.
pub fn cli(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    cli_with_env(data_dir, args, stdin, &[])
}

pub fn cli_with_env(data_dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(binary("squaremcp"))
        .args(args)
        .envs(env.iter().copied())
        .env("SQUAREMCP_DATA_DIR", data_dir)
        .envs(backend_env(data_dir))
        .env_remove("SQUAREMCP_ADMIN_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn squaremcp");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a CLI command that must succeed with `--json`, and returns its output.
pub fn cli_json(data_dir: &Path, args: &[&str], stdin: &str) -> Value {
    cli_json_with_env(data_dir, args, stdin, &[])
}

pub fn cli_json_with_env(data_dir: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cli_with_env(data_dir, &all, stdin, env);
    assert!(out.status.success(), "squaremcp {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// [`cli_json`] for what a running `squaremcp serve` is still writing: the usage and the call
/// log. `serve` answers a tool call a moment before its record (with the usage counter's change,
/// or a failed call's refund) is written, so this reads until two reads 100 ms apart agree (at
/// most 10 s) and returns the last.
pub fn cli_json_settled(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = cli_json_with_env(data_dir, args, "", env);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = cli_json_with_env(data_dir, args, "", env);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// A customer with an API key, made with the CLI.
pub struct Tenant {
    pub id: String,
    pub key: String,
    pub key_id: String,
}

pub fn create_tenant(data_dir: &Path, email: &str) -> Tenant {
    create_tenant_on_plan(data_dir, email, "pro")
}

pub fn create_tenant_on_plan(data_dir: &Path, email: &str, plan: &str) -> Tenant {
    create_tenant_on_plan_with_env(data_dir, email, plan, &[])
}

/// A customer on `plan`, with `env` (e.g. `SQUAREMCP_PLANS`) given to the CLI.
pub fn create_tenant_on_plan_with_env(data_dir: &Path, email: &str, plan: &str, env: &[(&str, &str)]) -> Tenant {
    let customer = cli_json_with_env(data_dir, &["customers", "create", "--email", email, "--plan", plan], "", env);
    let id = customer["id"].as_str().unwrap().to_owned();
    let key = cli_json_with_env(data_dir, &["api-keys", "create", "--customer", &id, "--name", "e2e"], "", env);
    Tenant { id, key: key["key"].as_str().unwrap().to_owned(), key_id: key["id"].as_str().unwrap().to_owned() }
}

/// A loopback port nothing listens on, never the same twice in this process: the tests of one
/// binary run in parallel, and the kernel may hand a just-released port to the next caller,
/// so two servers could race for one port (the loser exits, and the winner answers for both).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// `squaremcp serve` on a free loopback port; killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
}

impl Server {
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_log(data_dir, env, None)
    }

    /// Like [`Server::start`], with the server's log written to `log` instead of the test's stderr.
    pub fn start_with_log(data_dir: &Path, env: &[(&str, &str)], log: Option<&Path>) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(binary("squaremcp"));
        command
            .arg("serve")
            .env("SQUAREMCP_DATA_DIR", data_dir)
            .envs(backend_env(data_dir))
            .env("SQUAREMCP_LISTEN", format!("127.0.0.1:{port}"))
            .env("SQUAREMCP_PUBLIC_URL", &base)
            .env("SQUAREMCP_LOG", "info")
            // Not a terminal: serve logs JSON lines to stdout, like in a container.
            .stdout(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
                None => Stdio::inherit(),
            })
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::OpenOptions::new().append(true).open(path).expect("open the log file")),
                None => Stdio::inherit(),
            });
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn squaremcp serve");
        let server = Self { child: Some(child), base };
        server.wait_ready();
        server
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// One JSON-RPC request to `/mcp` with an API key; its JSON answer (the status must be 200).
    pub async fn rpc(&self, key: &str, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = reqwest::Client::new()
            .post(self.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .header("x-api-key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// `tools/call`; the call's `result`.
    pub async fn call_tool(&self, key: &str, name: &str, arguments: Value) -> Value {
        self.rpc(key, "tools/call", json!({"name": name, "arguments": arguments})).await["result"].clone()
    }

    /// `(name, readOnlyHint, destructiveHint, idempotentHint)` of the listed tools whose names
    /// start with `prefix`, in list order.
    pub async fn tool_hints(&self, key: &str, prefix: &str) -> Vec<(String, bool, bool, bool)> {
        let listed = self.rpc(key, "tools/list", json!({})).await;
        listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
            .map(|t| {
                let a = &t["annotations"];
                (t["name"].as_str().unwrap().to_owned(), a["readOnlyHint"] == true, a["destructiveHint"] == true, a["idempotentHint"] == true)
            })
            .collect()
    }

    /// A `tools/call` that must succeed; its `structuredContent`.
    pub async fn call_tool_ok(&self, key: &str, name: &str, arguments: Value) -> Value {
        let result = self.call_tool(key, name, arguments).await;
        assert_eq!(result["isError"], false, "{name}: {result}");
        result["structuredContent"].clone()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = self.base.trim_start_matches("http://");
        while Instant::now() < deadline {
            if answers_http(addr) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("squaremcp serve did not answer on {addr} within 20 s");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        sigterm_and_wait(&mut child).expect("serve did not stop within 10 s of SIGTERM")
    }
}

/// Sends SIGTERM to `child` and waits up to 10 s for it to exit; `None` if it did not (never
/// panics: it also runs in `Drop`).
fn sigterm_and_wait(child: &mut Child) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

impl Drop for Server {
    /// Stops it as an operator would (SIGTERM: it finishes what it answered, call records
    /// included), killing it only if it has not stopped within 10 s.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && sigterm_and_wait(&mut child).is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A customer who signs in with `password` (set with `customers create --password-stdin`).
pub fn create_customer_with_password(data_dir: &Path, email: &str, password: &str) -> String {
    let customer = cli_json(data_dir, &["customers", "create", "--email", email, "--plan", "pro", "--password-stdin"], &format!("{password}\n"));
    customer["id"].as_str().unwrap().to_owned()
}

/// `tests/node`, where `scripts/test` installs the MCP clients.
pub fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "the Node MCP clients are not installed: run scripts/test (or `npm ci` in tests/node)"
    );
    dir
}

/// `YYYY-MM-01` of the month after the current one (UTC): when usage resets. Counted from the
/// first of this month, because `date -d "next month"` overflows on the 31st.
pub fn first_day_of_next_month() -> String {
    let this = Command::new("date").args(["-u", "+%Y-%m-01"]).output().expect("date");
    let this = String::from_utf8_lossy(&this.stdout).trim().to_owned();
    let next = Command::new("date").args(["-u", "-d", &format!("{this} +1 month"), "+%Y-%m-01"]).output().expect("date");
    String::from_utf8_lossy(&next.stdout).trim().to_owned()
}

/// How an [`SmtpSink`] speaks TLS.
#[derive(Clone, Copy, Debug)]
pub enum SmtpTls {
    /// TLS from the first byte (`tls://`, port 465 style).
    Implicit,
    /// Plaintext until STARTTLS, required before AUTH (`starttls://`, port 587 style).
    StartTls,
}

/// A real SMTP server (aiosmtpd, installed by `scripts/test` in `.tools/smtp`) writing every
/// accepted message to a folder; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

impl SmtpSink {
    pub fn start(delay_ms: u64) -> Self {
        Self::start_with(delay_ms, &[])
    }

    /// Like [`SmtpSink::start`], also requiring SMTP AUTH from `users` (`(login, password)`) and
    /// relaying every accepted message over LMTP to `lmtp_port` (see `tests/smtp_sink.py`).
    pub fn start_relaying(lmtp_port: u16, users: &[(&str, &str)]) -> Self {
        let lines: String = users.iter().map(|(user, password)| format!("{user}:{password}\n")).collect();
        let file = std::env::temp_dir().join(format!("squaremcp-smtp-users-{}-{:016x}", std::process::id(), rand_u64()));
        std::fs::write(&file, lines).unwrap();
        Self::start_with(0, &[lmtp_port.to_string(), file.display().to_string()])
    }

    /// An SMTP server that signs senders in with SASL XOAUTH2 only, as Gmail and Microsoft 365
    /// do: each token is checked at `introspection_url` (RFC 7662, like Dovecot's oauth2
    /// passdb), and every attempt is kept for [`SmtpSink::auth_attempts`]. It speaks TLS with
    /// `certificate` (`(cert, key)` PEM files), from the first byte (`Tls::Implicit`, port
    /// 465 style) or after STARTTLS, which it then requires before AUTH (port 587 style).
    /// Accepted messages are relayed over LMTP to `lmtp_port` (see `tests/smtp_sink.py`).
    pub fn start_xoauth2(lmtp_port: u16, introspection_url: &str, tls: SmtpTls, certificate: (&Path, &Path)) -> Self {
        let mode = match tls {
            SmtpTls::Implicit => "tls",
            SmtpTls::StartTls => "starttls",
        };
        let (cert, key) = certificate;
        Self::start_with(
            0,
            &[
                lmtp_port.to_string(),
                "--xoauth2".to_owned(),
                introspection_url.to_owned(),
                "--tls".to_owned(),
                mode.to_owned(),
                "--cert".to_owned(),
                cert.display().to_string(),
                "--key".to_owned(),
                key.display().to_string(),
            ],
        )
    }

    fn start_with(delay_ms: u64, extra: &[String]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".tools/smtp/bin/python");
        assert!(python.exists(), "aiosmtpd is not installed: run scripts/test (it creates .tools/smtp)");
        let dir = TempDir::new("smtp");
        let port = free_port();
        let mut child = Command::new(python)
            .arg(root.join("tests/smtp_sink.py"))
            .args([port.to_string(), dir.path().display().to_string(), delay_ms.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let mut ready = String::new();
        use std::io::BufRead as _;
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "the SMTP sink did not start");
        Self { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every SASL sign-in attempt so far, oldest first (XOAUTH2 mode):
    /// `{"mechanism", "user", "token", "accepted"}`.
    pub fn auth_attempts(&self) -> Vec<Value> {
        let log = std::fs::read_to_string(self.dir.path().join("auth.jsonl")).unwrap_or_default();
        log.lines().map(|line| serde_json::from_str(line).expect("a JSON line in auth.jsonl")).collect()
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an HTTP server answers at `addr`. A bare TCP connect is not enough: probing a port
/// nobody listens on yet, the kernel can pick that same port as the probe's source and connect
/// the socket to itself (a CI run met this: "ready", then connection refused). Such a socket
/// reads back its own request, not an answer.
fn answers_http(addr: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut start = [0u8; 7];
    stream.read_exact(&mut start).is_ok() && &start == b"HTTP/1."
}
