//! `squaremcp-bench linkedin-video [--target-dir DIR] [--megabytes N]`: one `linkedin_upload_video`
//! call through `squaremcp serve` for a video `media_url` of N MB (200 by default), uploaded to
//! the LinkedIn mock in LinkedIn's 4 MiB parts, and the gateway's peak RSS (`VmHWM`) afterwards,
//! judged against 64 MB. The video is generated while it is sent and the mock counts the bytes
//! it receives without keeping them, so only the gateway's own memory is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::linkedin::{Linkedin, PERSON_ID};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::procs::{Service, binary, free_port, output, peak_rss_mb};

const TOKEN: &str = "AQXbench-linkedin-token_0123456789abcdefghijklmnopqrstuvwxyz";
const TARGET_MB: f64 = 64.0;

/// Serves `bytes` bytes of generated video at `/video.mp4` (with its Content-Length) to each
/// request, 64 KiB at a time.
async fn video_server(bytes: u64) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n"
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![0x5a_u8; 64 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
                    if socket.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    format!("http://{address}/video.mp4")
}

pub async fn run(args: &[String]) -> Result<Vec<String>, String> {
    let usage = "usage: squaremcp-bench linkedin-video [--target-dir DIR] [--megabytes N]";
    let mut target_dir = std::path::PathBuf::from("target/release");
    let mut megabytes: u64 = 200;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--target-dir" => target_dir = args.next().ok_or(usage)?.into(),
            "--megabytes" => megabytes = args.next().and_then(|n| n.parse().ok()).ok_or(usage)?,
            _ => return Err(usage.into()),
        }
    }
    let bytes = megabytes * 1024 * 1024;
    let squaremcp = binary(&target_dir, "squaremcp")?;
    let scratch =
        std::env::temp_dir().join(format!("squaremcp-bench-linkedin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let data = scratch.join("data");
    let key = provision(&squaremcp, &data).await?;

    let mock = Mock::start_unrecorded(Linkedin::accepting(&[TOKEN])).await;
    mock.platform().set_processing_polls(1);
    let video = video_server(bytes).await;
    let port = free_port();
    let mut serve = Command::new(&squaremcp);
    serve
        .arg("serve")
        .env("SQUAREMCP_DATA_DIR", &data)
        .env("SQUAREMCP_LISTEN", format!("127.0.0.1:{port}"))
        .env("SQUAREMCP_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("SQUAREMCP_LINKEDIN_BASE_URL", mock.base_url())
        .env("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1")
        .env("SQUAREMCP_PUBLISH_POLL_MILLISECONDS", "100");
    let gateway = Service::spawn(serve, port).await?;
    let pid = gateway.pid().ok_or("the gateway has no pid")?;
    let idle = peak_rss_mb(pid).unwrap_or_default();

    eprintln!(
        "==> linkedin_upload_video: {megabytes} MB from a URL to the LinkedIn mock in 4 MiB parts"
    );
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| e.to_string())?;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "linkedin_upload_video", "arguments": {"media_url": video}}});
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
    let peak = peak_rss_mb(pid).unwrap_or_default();
    let result = &answer["result"];
    let received = mock.platform().uploaded_bytes();
    println!(
        "linkedin_upload_video {megabytes} MB: {:.1} s, {} parts, status {}, mock received {} bytes; gateway RSS idle {idle:.1} MB, peak {peak:.1} MB (target < {TARGET_MB} MB)",
        elapsed.as_secs_f64(),
        result["structuredContent"]["parts"],
        result["structuredContent"]["status"],
        received
    );
    let mut failures = Vec::new();
    if result["isError"] != false {
        failures.push(format!("the upload failed: {result}"));
    }
    if received != bytes {
        failures.push(format!("the mock received {received} of {bytes} bytes"));
    }
    if peak >= TARGET_MB {
        failures.push(format!("peak RSS {peak:.1} MB is not under {TARGET_MB} MB"));
    }
    drop(gateway);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(failures)
}

/// A customer with an API key and a LinkedIn connection, made with the real CLI.
async fn provision(squaremcp: &Path, data: &Path) -> Result<String, String> {
    let cli = |args: &[&str]| {
        let mut command = Command::new(squaremcp);
        command
            .args(args)
            .arg("--json")
            .env("SQUAREMCP_DATA_DIR", data);
        command
    };
    let customer: Value = serde_json::from_str(
        &output(cli(&[
            "customers",
            "create",
            "--email",
            "bench@example.com",
            "--plan",
            "pro",
        ]))
        .await?,
    )
    .map_err(|e| e.to_string())?;
    let id = customer["id"].as_str().ok_or("no customer id")?.to_owned();
    let key: Value =
        serde_json::from_str(&output(cli(&["api-keys", "create", "--customer", &id])).await?)
            .map_err(|e| e.to_string())?;
    let mut set = cli(&[
        "credentials",
        "set",
        "--customer",
        &id,
        "--platform",
        "linkedin",
    ]);
    set.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = set.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let document =
            json!({"access_token": TOKEN, "account": {"id": PERSON_ID, "name": "Bench"}});
        stdin
            .write_all(document.to_string().as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("storing the bench's LinkedIn connection failed".into());
    }
    Ok(key["key"].as_str().ok_or("no key")?.to_owned())
}
