//! `squaremcp serve` at its edge: HSTS when its public URL is https, and clients too slow to
//! send their headers are cut off (slowloris).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use squaremcp_tests::{Server, TempDir};

async fn hsts_of(server: &Server, path: &str) -> Option<String> {
    let response = reqwest::get(format!("{}{path}", server.base))
        .await
        .unwrap();
    response
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn answers_carry_hsts_only_when_the_public_url_is_https() {
    let dir = TempDir::new("hsts");
    let https = Server::start(
        dir.path(),
        &[("SQUAREMCP_PUBLIC_URL", "https://mcp.example.com")],
    );
    // Every route group's answers (the probes' `/healthz` is not one: it stays plain).
    for path in ["/.well-known/oauth-authorization-server", "/login", "/mcp"] {
        assert_eq!(
            hsts_of(&https, path).await.as_deref(),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    drop(https);
    let plain = Server::start(dir.path(), &[]);
    for path in ["/.well-known/oauth-authorization-server", "/login"] {
        assert_eq!(
            hsts_of(&plain, path).await,
            None,
            "plain-HTTP deployments (local use) get none: {path}"
        );
    }
}

#[test]
fn a_client_sending_its_headers_a_byte_at_a_time_is_cut_off() {
    let dir = TempDir::new("slowloris");
    let server = Server::start(dir.path(), &[]);
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    // Long enough to take a minute at a byte every 300 ms.
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(200)
    );
    let started = Instant::now();
    let mut cut_off = false;
    for byte in request.as_bytes() {
        if stream.write_all(&[*byte]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut buffer = [0u8; 64];
        match stream.read(&mut buffer) {
            // A closed connection reads as its end (or as an error once it was reset).
            Ok(0) => {
                cut_off = true;
                break;
            }
            Ok(_) => panic!(
                "the slow request was answered: {}",
                String::from_utf8_lossy(&buffer)
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                cut_off = true;
                break;
            }
        }
    }
    let waited = started.elapsed();
    assert!(cut_off, "the server waited {waited:?} for the headers");
    // `serve` allows 10 s for a request's headers.
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "cut off after {waited:?}"
    );
    // The server still serves others.
    let healthy = TcpStream::connect(server.base.trim_start_matches("http://"));
    assert!(healthy.is_ok());
}
