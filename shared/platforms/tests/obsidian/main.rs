//! The Obsidian tools on both vault backends, with the same cases: a directory vault in a temporary
//! root, and an S3 vault on the emulator's S3 API (moto_server) when `AWS_ENDPOINT_URL_S3` is set
//! (`scripts/test` sets it; otherwise the S3 half is skipped with a printed reason).
//!
//! Cases: read with front matter, append, update with the right version, a conditional update
//! losing to a concurrent write (a conflict, the other write kept), creation refused over an
//! existing note, traversal / absolute / `.obsidian` paths refused, symlinks out of the vault
//! refused (directory), search caps on a 10,000-note vault (match limit, byte cap, time cap),
//! regex search, sync status, and SSRF: an S3 endpoint on loopback refused by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use squaremcp_core::tool::{FailureKind, Tool, ToolFailure, with_caller};
use squaremcp_core::{CustomerId, Secret};
use squaremcp_platforms::kit::NetworkPolicy;
use sha2::{Digest as _, Sha256};
use squaremcp_platforms::obsidian::{ObsidianSettings, sigv4_signature};
use squaremcp_platforms::{PlatformConfig, http_client, modules};

/// Notes in the search vault: 10,000 on disk; 1,000 on the emulator's S3, which takes about 9 ms
/// per PUT and per GET here and several times that on a busy CI machine (10,000 would spend
/// minutes filling it). The time cap is checked on its own, with a zero limit.
const NOTE_COUNT: usize = 10_000;
const S3_NOTE_COUNT: usize = 1_000;

struct Vault {
    /// What the test writes behind the tools' back (a sync, another device).
    side: Side,
    credential: Value,
    customer: CustomerId,
    settings: ObsidianSettings,
    network: NetworkPolicy,
    _root: TempRoot,
}

/// A directory vault's temporary root, removed when the test is done with it.
struct TempRoot(Option<PathBuf>);

impl Drop for TempRoot {
    fn drop(&mut self) {
        if let Some(root) = &self.0 {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

enum Side {
    Directory(PathBuf),
    S3 { endpoint: String, bucket: String, prefix: String },
}

impl Vault {
    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let config = PlatformConfig::new(http_client()).with_network(self.network.clone()).with_obsidian(self.settings.clone());
        modules(&config).into_iter().filter(|m| m.platform() == squaremcp_core::Platform::Obsidian).flat_map(|m| m.tools()).collect()
    }

    async fn call(&self, name: &str, arguments: Value) -> Result<Value, ToolFailure> {
        let tool = self.tools().into_iter().find(|t| t.definition().name == format!("obsidian_{name}")).expect("a tool");
        let Value::Object(arguments) = arguments else { panic!("arguments are an object") };
        let schema = &tool.definition().input_schema;
        squaremcp_core::schema::validate(schema, &Value::Object(arguments.clone())).expect("valid arguments");
        let credential = Secret::new(self.credential.clone());
        with_caller(self.customer.clone(), tool.call(&credential, arguments)).await.map(|o| o.structured)
    }

    /// Writes a file as a sync client would.
    async fn put(&self, path: &str, content: &str) {
        match &self.side {
            Side::Directory(dir) => {
                let full = dir.join(path);
                std::fs::create_dir_all(full.parent().expect("a parent")).expect("folders");
                std::fs::write(full, content).expect("written");
            }
            Side::S3 { endpoint, bucket, prefix } => {
                // Signed: moto refuses an anonymous PUT over an existing object.
                let key: String = format!("/{bucket}/{prefix}{path}").replace(' ', "%20");
                let host = endpoint.trim_start_matches("http://").to_owned();
                let hash: String = Sha256::digest(content.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
                let now = time::OffsetDateTime::now_utc();
                let date = format!("{:04}{:02}{:02}T{:02}{:02}{:02}Z", now.year(), u8::from(now.month()), now.day(), now.hour(), now.minute(), now.second());
                let signature = sigv4_signature("PUT", &key, &[("host", &host), ("x-amz-content-sha256", &hash), ("x-amz-date", &date)], &date, "us-east-1", "test-secret-key");
                let authorization = format!("AWS4-HMAC-SHA256 Credential=test/{}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}", &date[..8]);
                let response = http_client().put(format!("{endpoint}{key}")).header("x-amz-content-sha256", hash).header("x-amz-date", date)
                    .header("authorization", authorization).body(content.to_owned()).send().await.expect("PUT");
                let status = response.status();
                assert!(status.is_success(), "PUT {path}: {status} {}", response.text().await.unwrap_or_default());
            }
        }
    }

    async fn get(&self, path: &str) -> String {
        self.call("read_note", json!({ "path": path })).await.expect("read")["body"].as_str().expect("body").to_owned()
    }
}

fn directory_vault(name: &str) -> Vault {
    let root = std::env::temp_dir().join(format!("squaremcp-obsidian-{}-{name}-{}", std::process::id(), unique()));
    let customer = CustomerId::generate();
    let dir = root.join(customer.as_str()).join("Notes");
    std::fs::create_dir_all(&dir).expect("vault");
    let settings = ObsidianSettings { root: Some(root.clone()), ..ObsidianSettings::default() };
    Vault {
        side: Side::Directory(dir),
        credential: json!({ "vault": "Notes" }),
        customer,
        settings,
        network: NetworkPolicy::default(),
        _root: TempRoot(Some(root)),
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

async fn s3_vault(name: &str) -> Option<Vault> {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_S3") else {
        eprintln!("S3 half skipped: AWS_ENDPOINT_URL_S3 is not set (scripts/test sets it to the emulator's S3 API)");
        return None;
    };
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let bucket = format!("vault-{name}-{}", unique() % 1_000_000_000);
    let status = http_client().put(format!("{endpoint}/{bucket}")).send().await.expect("create bucket").status();
    assert!(status.is_success(), "create bucket: {status}");
    let prefix = "obsidian/".to_owned();
    let credential = json!({ "bucket": bucket, "prefix": prefix, "region": "us-east-1", "endpoint": endpoint,
        "access_key_id": "test", "secret_access_key": "test-secret-key" });
    Some(Vault {
        side: Side::S3 { endpoint, bucket, prefix },
        credential,
        customer: CustomerId::generate(),
        settings: ObsidianSettings::default(),
        network: NetworkPolicy::new(true),
        _root: TempRoot(None),
    })
}

async fn both(name: &str) -> Vec<Vault> {
    let mut vaults = vec![directory_vault(name)];
    vaults.extend(s3_vault(name).await);
    vaults
}

fn kind(result: Result<Value, ToolFailure>) -> (FailureKind, String) {
    let failure = result.expect_err("a failure");
    (failure.kind, failure.message)
}

#[tokio::test]
async fn read_append_update_and_conflicts() {
    for vault in both("rw").await {
        vault.put("Projects/Plan.md", "---\ntitle: Plan\ntags: [work, q1]\n---\n# Plan\nfirst line\n").await;
        let read = vault.call("read_note", json!({ "path": "Projects/Plan" })).await.expect("read");
        assert_eq!(read["front_matter"], json!({ "title": "Plan", "tags": ["work", "q1"] }));
        assert_eq!(read["body"], "# Plan\nfirst line\n");
        let version = read["version"].as_str().expect("version").to_owned();

        let appended = vault.call("append_to_note", json!({ "path": "Projects/Plan.md", "text": "- appended" })).await.expect("append");
        assert_eq!(appended["created"], false);
        assert!(vault.get("Projects/Plan.md").await.ends_with("first line\n- appended\n"));
        let created = vault.call("append_to_note", json!({ "path": "Inbox/New note", "text": "hello" })).await.expect("append creates");
        assert_eq!(created["created"], true);
        assert_eq!(vault.get("Inbox/New note.md").await, "hello\n");

        // The version read before the append is stale: the update loses, nothing is overwritten.
        let (kind_, message) = kind(vault.call("update_note", json!({ "path": "Projects/Plan.md", "content": "replaced", "version": version })).await);
        assert_eq!(kind_, FailureKind::InvalidInput, "{message}");
        assert!(message.starts_with("Conflict:"), "{message}");
        assert!(vault.get("Projects/Plan.md").await.contains("- appended"));

        // Read, a sync writes meanwhile, then the update: a conflict, and the sync's text stays.
        let fresh = vault.call("read_note", json!({ "path": "Projects/Plan.md" })).await.expect("read")["version"].as_str().expect("v").to_owned();
        vault.put("Projects/Plan.md", "written by another device\n").await;
        let (_, message) = kind(vault.call("update_note", json!({ "path": "Projects/Plan.md", "content": "mine", "version": fresh })).await);
        assert!(message.contains("changed since it was read"), "{message}");
        assert_eq!(vault.get("Projects/Plan.md").await, "written by another device\n");

        // With the current version it goes through, and its new version chains.
        let current = vault.call("read_note", json!({ "path": "Projects/Plan.md" })).await.expect("read")["version"].as_str().expect("v").to_owned();
        let updated = vault.call("update_note", json!({ "path": "Projects/Plan.md", "content": "mine\n", "version": current })).await.expect("update");
        let again = vault.call("update_note", json!({ "path": "Projects/Plan.md", "content": "mine again\n", "version": updated["version"] })).await;
        assert!(again.is_ok(), "{again:?}");
        assert_eq!(vault.get("Projects/Plan.md").await, "mine again\n");

        // Creating over an existing note without a version is refused; `overwrite` replaces it.
        let (_, message) = kind(vault.call("update_note", json!({ "path": "Projects/Plan.md", "content": "x" })).await);
        assert!(message.contains("already exists"), "{message}");
        vault.call("update_note", json!({ "path": "Projects/Plan.md", "content": "x\n", "overwrite": true })).await.expect("overwrite");
        let new = vault.call("update_note", json!({ "path": "Fresh.md", "content": "new\n" })).await.expect("create");
        assert_eq!(new["created"], true);
        let (missing, _) = kind(vault.call("read_note", json!({ "path": "Nope.md" })).await);
        assert_eq!(missing, FailureKind::NotFound);
    }
}

#[tokio::test]
async fn escapes_and_internals_are_refused() {
    for vault in both("paths").await {
        vault.put(".obsidian/app.json", "{}").await;
        for path in ["../outside.md", "a/../../outside.md", "/etc/passwd", "C:/x.md", ".obsidian/app.json", "x\\..\\y.md", "a\u{0}.md", "image.png"] {
            for (tool, arguments) in [
                ("read_note", json!({ "path": path })),
                ("append_to_note", json!({ "path": path, "text": "x" })),
                ("update_note", json!({ "path": path, "content": "x", "overwrite": true })),
            ] {
                let (kind_, message) = kind(vault.call(tool, arguments).await);
                assert_eq!(kind_, FailureKind::InvalidInput, "{tool} {path:?}: {message}");
            }
        }
        let (kind_, _) = kind(vault.call("search_notes", json!({ "query": "x", "folder": "../.." })).await);
        assert_eq!(kind_, FailureKind::InvalidInput);
    }
    // Symbolic links: only a directory vault has them.
    let vault = directory_vault("links");
    let Side::Directory(dir) = &vault.side else { unreachable!() };
    let outside = dir.parent().and_then(Path::parent).expect("root").join("outside");
    std::fs::create_dir_all(&outside).expect("outside");
    std::fs::write(outside.join("secret.md"), "SECRET-OUTSIDE").expect("outside note");
    std::os::unix::fs::symlink(outside.join("secret.md"), dir.join("escape.md")).expect("file link");
    std::os::unix::fs::symlink(&outside, dir.join("elsewhere")).expect("folder link");
    std::fs::write(dir.join("inside.md"), "inside\n").expect("note");
    std::os::unix::fs::symlink(dir.join("inside.md"), dir.join("alias.md")).expect("inner link");
    for (tool, arguments) in [
        ("read_note", json!({ "path": "escape.md" })),
        ("read_note", json!({ "path": "elsewhere/secret.md" })),
        ("update_note", json!({ "path": "elsewhere/new.md", "content": "x" })),
        ("append_to_note", json!({ "path": "escape.md", "text": "x" })),
    ] {
        let (kind_, message) = kind(vault.call(tool, arguments.clone()).await);
        assert_eq!(kind_, FailureKind::InvalidInput, "{tool} {arguments}: {message}");
        assert!(!message.contains("SECRET-OUTSIDE"));
    }
    assert!(!outside.join("new.md").exists());
    assert_eq!(vault.get("alias.md").await, "inside\n", "a link staying inside the vault reads");
    let found = vault.call("search_notes", json!({ "query": "SECRET-OUTSIDE" })).await.expect("search");
    assert_eq!(found["matches"], json!([]), "links are not followed by the search");
    // A directory vault needs the operator's root and a calling customer.
    let no_root = Vault { settings: ObsidianSettings::default(), ..directory_vault("noroot") };
    let (kind_, message) = kind(no_root.call("sync_status", json!({})).await);
    assert_eq!(kind_, FailureKind::NotConfigured, "{message}");
    assert!(message.contains("SQUAREMCP_OBSIDIAN_ROOT"), "{message}");
    let other = Vault { customer: CustomerId::generate(), ..directory_vault("other") };
    let (kind_, _) = kind(Vault { settings: vault.settings.clone(), ..other }.call("sync_status", json!({})).await);
    assert_eq!(kind_, FailureKind::NotConfigured, "another customer's vault of the same name is not found");
}

async fn fill(vault: &Vault, count: usize) {
    let notes: Vec<(String, String)> = (0..count)
        .map(|i| {
            let needle = if i % 1000 == 7 { "the rare needle here" } else { "ordinary text" };
            (format!("Folder{:02}/Note {i:05}.md", i % 50), format!("---\nn: {i}\n---\n# Note {i}\nline with common word\n{needle}\nend {i}\n"))
        })
        .collect();
    futures_util::stream::iter(notes).map(|(path, content)| async move { vault.put(&path, &content).await }).buffer_unordered(32).collect::<Vec<()>>().await;
    vault.put(".obsidian/workspace.md", "common word rare needle").await;
    vault.put(".trash/old.md", "common word rare needle").await;
    vault.put("picture.png", "common word rare needle").await;
}

#[tokio::test]
async fn search_caps_hold_on_a_10000_note_vault() {
    for mut vault in both("search").await {
        let count = if matches!(vault.side, Side::S3 { .. }) { S3_NOTE_COUNT } else { NOTE_COUNT };
        // The emulator's speed is not the product's: a full search must not meet the time cap.
        vault.settings.search_time_limit = Duration::from_secs(300);
        let started = Instant::now();
        fill(&vault, count).await;
        eprintln!("{count} notes written in {:?}", started.elapsed());

        let started = Instant::now();
        let all = vault.call("search_notes", json!({ "query": "RARE NEEDLE", "context_lines": 1 })).await.expect("search");
        eprintln!("full search of {count} notes: {:?} (tool says {} ms)", started.elapsed(), all["elapsed_ms"]);
        assert_eq!(all["notes_total"], count, "`.obsidian/`, `.trash/` and non-Markdown are not notes");
        let matches = all["matches"].as_array().expect("matches");
        assert_eq!(matches.len(), count / 1000, "{all}");
        assert_eq!(all["truncated"], false);
        assert_eq!(matches[0]["path"], "Folder07/Note 00007.md");
        assert_eq!(matches[0]["line"], 6);
        assert_eq!(matches[0]["before"], json!(["line with common word"]));
        assert_eq!(matches[0]["after"], json!(["end 7"]));

        let limited = vault.call("search_notes", json!({ "query": "common", "limit": 25 })).await.expect("search");
        assert_eq!(limited["matches"].as_array().map(Vec::len), Some(25));
        assert_eq!(limited["stopped_by"], "limit");

        let regex = vault.call("search_notes", json!({ "query": r"^end 12\d{2}$", "regex": true, "folder": "Folder03" })).await.expect("regex");
        let paths: Vec<&str> = regex["matches"].as_array().expect("m").iter().filter_map(|m| m["path"].as_str()).collect();
        let expected: Vec<&str> = ["Folder03/Note 01203.md", "Folder03/Note 01253.md"].into_iter().filter(|_| count > 1253).collect();
        assert_eq!(paths, expected);
        let (kind_, _) = kind(vault.call("search_notes", json!({ "query": "(a{1000}){1000}", "regex": true })).await);
        assert_eq!(kind_, FailureKind::InvalidInput, "a regex beyond the size limit is refused");

        vault.settings.search_byte_limit = 32 * 1024;
        let bytes = vault.call("search_notes", json!({ "query": "nothing matches this" })).await.expect("search");
        assert_eq!(bytes["stopped_by"], "bytes", "{bytes}");
        assert!(bytes["notes_scanned"].as_u64().expect("n") < 500, "{bytes}");

        vault.settings.search_byte_limit = ObsidianSettings::default().search_byte_limit;
        vault.settings.search_time_limit = Duration::ZERO;
        let timed = vault.call("search_notes", json!({ "query": "nothing matches this" })).await.expect("search");
        assert_eq!(timed["stopped_by"], "time", "{timed}");
        assert_eq!(timed["truncated"], true);

        let status = vault.call("sync_status", json!({})).await.expect("status");
        assert_eq!(status["note_count"], count, "{status}");
        assert!(status["last_change"].is_string(), "{status}");
    }
}

#[tokio::test]
async fn sync_status_reads_git_and_remotely_save() {
    let vault = directory_vault("git");
    let Side::Directory(dir) = &vault.side else { unreachable!() };
    vault.put("a.md", "a\n").await;
    let status = vault.call("sync_status", json!({})).await.expect("status");
    assert_eq!((status["source"].as_str(), status["note_count"].as_u64()), (Some("files"), Some(1)), "{status}");
    let git = |args: &[&str]| {
        std::process::Command::new("git").args(args).current_dir(dir).env("GIT_AUTHOR_NAME", "t").env("GIT_AUTHOR_EMAIL", "t@example.test")
            .env("GIT_COMMITTER_NAME", "t").env("GIT_COMMITTER_EMAIL", "t@example.test").output().is_ok_and(|o| o.status.success())
    };
    if !git(&["init", "-q", "-b", "main"]) {
        eprintln!("git half skipped: `git` is not installed");
    } else {
        assert!(git(&["add", "."]));
        assert!(git(&["commit", "-q", "-m", "first"]));
        vault.put("b.md", "b\n").await;
        vault.put("a.md", "changed\n").await;
        let status = vault.call("sync_status", json!({})).await.expect("status");
        assert_eq!(status["source"], "git", "{status}");
        assert_eq!(status["git"]["branch"], "main");
        assert_eq!((status["git"]["changed"].as_u64(), status["git"]["untracked"].as_u64()), (Some(1), Some(1)), "{status}");
        assert_eq!(status["git"]["changed_paths"], json!(["a.md"]));
        assert!(status["git"]["last_commit"].is_string());
    }
    if let Some(s3) = s3_vault("status").await {
        s3.put("n.md", "n\n").await;
        let status = s3.call("sync_status", json!({})).await.expect("status");
        assert_eq!(status["remotely_save"], Value::Null);
        s3.put("_remotely-save-metadata-on-remote.json", "{\"version\":\"x\"}").await;
        let status = s3.call("sync_status", json!({})).await.expect("status");
        assert_eq!(status["note_count"], 1);
        assert_eq!(status["remotely_save"]["key"], "obsidian/_remotely-save-metadata-on-remote.json", "{status}");
    }
}

#[tokio::test]
async fn an_s3_endpoint_on_a_private_address_is_refused_unless_allowed() {
    for endpoint in ["http://127.0.0.1:9", "http://10.1.2.3", "http://169.254.169.254", "http://localhost:9"] {
        let vault = Vault {
            side: Side::Directory(PathBuf::new()),
            credential: json!({ "bucket": "notes", "region": "us-east-1", "endpoint": endpoint, "access_key_id": "AKIACANARY",
                "secret_access_key": "CANARY-s3-secret" }),
            customer: CustomerId::generate(),
            settings: ObsidianSettings::default(),
            network: NetworkPolicy::default(),
            _root: TempRoot(None),
        };
        let (kind_, message) = kind(vault.call("read_note", json!({ "path": "x.md" })).await);
        assert_eq!(kind_, FailureKind::Forbidden, "{endpoint}: {message}");
        assert!(message.contains("SQUAREMCP_ALLOW_PRIVATE_HOSTS") && !message.contains("CANARY"), "{message}");
    }
}

/// `SQUAREMCP_OBSIDIAN_OB` set: `sync_status` runs `<ob> sync-status --json` in the vault (no
/// shell) and returns its JSON; a failing `ob` is a clear upstream error with its first line.
/// The program here is a stand-in script that records how it was run: Obsidian Headless Sync
/// itself needs an Obsidian account and the network.
#[tokio::test]
async fn sync_status_runs_ob_in_the_vault_and_returns_its_answer() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut vault = directory_vault("ob");
    let Side::Directory(dir) = &vault.side else { unreachable!() };
    let dir = dir.clone();
    let bin = std::env::temp_dir().join(format!("squaremcp-ob-{}-{}", std::process::id(), unique()));
    std::fs::create_dir_all(&bin).expect("bin");
    let record = bin.join("record");
    let script = |name: &str, body: &str| {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    };
    let ob = script("ob", &format!(
        "printf '%s|%s\\n' \"$*\" \"$(pwd)\" > '{}'\necho '{{\"state\": \"synced\", \"vault\": \"Notes\", \"pending\": 0}}'",
        record.display()
    ));
    std::fs::write(dir.join("a.md"), "a\n").expect("note");
    vault.settings.ob_command = Some(ob);
    let status = vault.call("sync_status", json!({})).await.expect("status");
    assert_eq!(status["source"], "ob sync-status", "{status}");
    assert_eq!(status["ob"], json!({"state": "synced", "vault": "Notes", "pending": 0}));
    assert_eq!(status["note_count"], 1);
    let ran = std::fs::read_to_string(&record).expect("ob ran");
    let (args, cwd) = ran.trim().split_once('|').expect("args|cwd");
    assert_eq!(args, "sync-status --json");
    assert_eq!(std::fs::canonicalize(cwd).expect("cwd"), std::fs::canonicalize(&dir).expect("dir"));

    vault.settings.ob_command = Some(script("ob-failing", "echo 'not logged in: run ob login' >&2\nexit 3"));
    let (kind, message) = kind(vault.call("sync_status", json!({})).await);
    assert_eq!(kind, FailureKind::Upstream, "{message}");
    assert!(message.contains("not logged in: run ob login"), "{message}");
    let _ = std::fs::remove_dir_all(&bin);
}
