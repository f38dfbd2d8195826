//! `squaremcp-bench vault-search [--target-dir DIR] [--notes N]`: `obsidian_search_notes`
//! through `squaremcp serve` on a vault of N generated notes (10,000 by default) — a directory
//! vault, and an S3 vault on the emulator when `AWS_ENDPOINT_URL_S3` is set — for a substring
//! found only in the last note, a regex, and a query found nowhere (a full scan each). It prints
//! each search's time and what the tool reports (notes scanned, `stopped_by`), and judges the
//! caps: a search may take its time budget (10 s) and must then stop, truncated, not run on.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use crate::procs::{Service, binary, free_port, output, peak_rss_mb};

/// The search's own time budget (ObsidianSettings' default) and the slack allowed past it.
const TIME_CAP: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(3);

/// A note of about 1.5 KB whose words differ from note to note.
fn note(index: usize) -> String {
    let mut text = format!("---\ntitle: Note {index}\ntags: [bench, n{}]\n---\n# Note {index}\n", index % 97);
    for line in 0..24 {
        text.push_str(&format!("- item {line} of note {index}: meeting notes about project p{} and task t{}\n", (index * 7 + line) % 1000, (index + line * 13) % 577));
    }
    text
}

fn path_of(index: usize) -> String {
    format!("Folder {:02}/Note {index:05}.md", index % 50)
}

pub async fn run(args: &[String]) -> Result<Vec<String>, String> {
    let usage = "usage: squaremcp-bench vault-search [--target-dir DIR] [--notes N]";
    let mut target_dir = std::path::PathBuf::from("target/release");
    let mut notes: usize = 10_000;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target-dir" => target_dir = args.next().ok_or(usage)?.into(),
            "--notes" => notes = args.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0).ok_or(usage)?,
            _ => return Err(usage.into()),
        }
    }
    let squaremcp = binary(&target_dir, "squaremcp")?;
    let scratch = std::env::temp_dir().join(format!("squaremcp-bench-vault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let data = scratch.join("data");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let (customer, key) = provision(&squaremcp, &data).await?;

    eprintln!("==> vault search: writing {notes} notes");
    let vault = scratch.join("vaults").join(&customer).join("Notes");
    for index in 0..notes {
        let path = vault.join(path_of(index));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&path, note(index)).map_err(|e| e.to_string())?;
    }
    set_credential(&squaremcp, &data, &customer, "disk", &json!({ "vault": "Notes" })).await?;
    let mut accounts = vec!["disk"];
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_S3") {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let bucket = format!("bench-vault-{}", std::process::id());
        eprintln!("==> vault search: uploading {notes} notes to {endpoint}/{bucket}");
        upload(&endpoint, &bucket, notes).await?;
        let document = json!({ "bucket": bucket, "prefix": "Notes/", "region": "us-east-1", "endpoint": endpoint,
            "access_key_id": "test", "secret_access_key": "test" });
        set_credential(&squaremcp, &data, &customer, "s3", &document).await?;
        accounts.push("s3");
    } else {
        eprintln!("==> vault search: S3 skipped (AWS_ENDPOINT_URL_S3 is not set; scripts/emulators/emulators.sh env sets it)");
    }

    let port = free_port();
    let mut serve = Command::new(&squaremcp);
    serve
        .arg("serve")
        .env("SQUAREMCP_DATA_DIR", &data)
        .env("SQUAREMCP_LISTEN", format!("127.0.0.1:{port}"))
        .env("SQUAREMCP_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("SQUAREMCP_OBSIDIAN_ROOT", scratch.join("vaults"))
        .env("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1");
    let gateway = Service::spawn(serve, port).await?;
    let pid = gateway.pid().ok_or("the gateway has no pid")?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().map_err(|e| e.to_string())?;
    let last = format!("note {}:", notes - 1);
    let searches = [
        ("substring in the last note", json!({ "query": last })),
        ("regex in the last note", json!({ "query": format!(r"of note {}: meeting .* task t\d+$", notes - 1), "regex": true })),
        ("no match (full scan)", json!({ "query": "nothing-matches-this" })),
    ];
    let mut failures = Vec::new();
    for account in accounts {
        for (what, arguments) in &searches {
            let mut arguments = arguments.clone();
            arguments["account"] = json!(account);
            let started = Instant::now();
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "obsidian_search_notes", "arguments": arguments}});
            let answer: Value = http
                .post(format!("{}/mcp", gateway.base))
                .header("x-api-key", &key)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let elapsed = started.elapsed();
            let result = &answer["result"]["structuredContent"];
            println!(
                "vault search {account} {notes} notes, {what}: {:.2} s; scanned {} of {}, {} matches, stopped_by {}",
                elapsed.as_secs_f64(),
                result["notes_scanned"],
                result["notes_total"],
                result["matches"].as_array().map_or(0, Vec::len),
                result["stopped_by"]
            );
            if answer["result"]["isError"] != false {
                failures.push(format!("{account} {what}: the search failed: {answer}"));
            } else if elapsed > TIME_CAP + SLACK {
                failures.push(format!("{account} {what}: {:.1} s, past the 10 s budget and its slack", elapsed.as_secs_f64()));
            } else if result["stopped_by"].is_null() && result["notes_scanned"] != json!(notes) {
                failures.push(format!("{account} {what}: not stopped, yet scanned {} of {notes}", result["notes_scanned"]));
            }
        }
    }
    println!("vault search: gateway peak RSS {:.1} MB", peak_rss_mb(pid).unwrap_or_default());
    drop(gateway);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(failures)
}

/// The notes as objects under `Notes/` in a new bucket on the emulator, 16 uploads at a time.
async fn upload(endpoint: &str, bucket: &str, notes: usize) -> Result<(), String> {
    let http = reqwest::Client::new();
    let created = http.put(format!("{endpoint}/{bucket}")).send().await.map_err(|e| e.to_string())?;
    if !created.status().is_success() {
        return Err(format!("creating the bucket: HTTP {}", created.status()));
    }
    let puts = futures_util::stream::iter((0..notes).map(|index| {
        let (http, url) = (http.clone(), format!("{endpoint}/{bucket}/Notes/{}", path_of(index).replace(' ', "%20")));
        async move { http.put(url).body(note(index)).send().await.map(|r| r.status().is_success()).unwrap_or(false) }
    }))
    .buffer_unordered(16);
    let stored = puts.filter(|ok| std::future::ready(*ok)).count().await;
    if stored == notes { Ok(()) } else { Err(format!("only {stored} of {notes} notes were uploaded")) }
}

/// A customer and an API key, made with the real CLI.
async fn provision(squaremcp: &Path, data: &Path) -> Result<(String, String), String> {
    let cli = |args: &[&str]| {
        let mut command = Command::new(squaremcp);
        command.args(args).arg("--json").env("SQUAREMCP_DATA_DIR", data);
        command
    };
    let customer: Value = serde_json::from_str(&output(cli(&["customers", "create", "--email", "vaults@example.com", "--plan", "pro"])).await?)
        .map_err(|e| e.to_string())?;
    let id = customer["id"].as_str().ok_or("no customer id")?.to_owned();
    let key: Value = serde_json::from_str(&output(cli(&["api-keys", "create", "--customer", &id])).await?).map_err(|e| e.to_string())?;
    Ok((id, key["key"].as_str().ok_or("no key")?.to_owned()))
}

async fn set_credential(squaremcp: &Path, data: &Path, customer: &str, account: &str, document: &Value) -> Result<(), String> {
    let mut set = Command::new(squaremcp);
    set.args(["credentials", "set", "--customer", customer, "--platform", "obsidian", "--account", account, "--json"])
        .env("SQUAREMCP_DATA_DIR", data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = set.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(document.to_string().as_bytes()).await.map_err(|e| e.to_string())?;
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("storing the {account} vault failed")) }
}
