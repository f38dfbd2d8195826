//! `squaremcp serve`: every route group on one listener, until SIGTERM or Ctrl-C.
//!
//! Its own accept loop rather than `axum::serve`, which offers no header-read timeout: a client
//! that sends its request line and headers a byte at a time (slowloris) would otherwise hold a
//! connection and a task for ever, and a few thousand of them exhaust the file descriptors.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::StartError;
use crate::body_deadline;

/// How long a client may take to send what the server waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadTimeouts {
    /// From the first byte of a request (or the end of the previous one on a kept-alive
    /// connection) to the end of its headers; the connection is closed when it passes.
    pub headers: Duration,
    /// From the end of the headers to the end of the body; the handler gets an error (a 4xx
    /// answer) when it passes. Generous: a tools/call may carry a few megabytes of media.
    pub body: Duration,
}

impl Default for ReadTimeouts {
    fn default() -> Self {
        Self { headers: Duration::from_secs(10), body: Duration::from_secs(60) }
    }
}

/// Serves until SIGTERM or Ctrl-C, then stops accepting and lets the requests in flight finish,
/// for at most `grace`: under Kubernetes, `terminationGracePeriodSeconds` should leave a few
/// seconds beyond it.
pub async fn serve(listener: TcpListener, router: Router, grace: Duration) -> Result<(), StartError> {
    serve_then(listener, router, grace, std::future::ready(())).await
}

/// [`serve`], then `finish` (work the answered requests left under way, such as call records
/// still being written: `Gateway::records_written`), all within the same `grace`.
pub async fn serve_then(listener: TcpListener, router: Router, grace: Duration, finish: impl Future<Output = ()>) -> Result<(), StartError> {
    serve_until(listener, router, ReadTimeouts::default(), (grace, finish), shutdown_signal()).await
}

/// [`serve_then`], stopping when `stop` completes.
pub(crate) async fn serve_until(
    listener: TcpListener,
    router: Router,
    timeouts: ReadTimeouts,
    (grace, finish): (Duration, impl Future<Output = ()>),
    stop: impl Future<Output = ()>,
) -> Result<(), StartError> {
    // `stopping` tells every connection to finish its request in flight and close; each
    // connection holds a clone of `open`, so `open_tx.closed()` completes when the last one ends.
    let (stopping_tx, stopping) = watch::channel(false);
    let (open_tx, open) = watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        tokio::spawn(serve_connection(stream, peer, router.clone(), timeouts, stopping.clone(), open.clone()));
    }
    drop(listener);
    drop(open);
    let _ = stopping_tx.send(true);
    let finished = async {
        open_tx.closed().await;
        finish.await;
    };
    match tokio::time::timeout(grace, finished).await {
        Ok(()) => {
            tracing::info!("stopped: every request answered");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests or their call records still in flight after the grace period");
            Err(StartError::ShutdownTimeout(grace.as_secs()))
        }
    }
}

/// One connection, HTTP/1.1 (what axum is built with here), until the client closes it, a
/// timeout cuts it off, or the server stops (after its request in flight).
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    timeouts: ReadTimeouts,
    mut stopping: watch::Receiver<bool>,
    _open: watch::Receiver<()>,
) {
    // Answers go out whole; Nagle's algorithm would hold a second write (a streamed body's
    // next chunk) until the client's delayed ACK, up to 40 ms later.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(|body| body_deadline::with_deadline(axum::body::Body::new(body), timeouts.body));
        // What `into_make_service_with_connect_info` gave: the peer address for the rate limits.
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(timeouts.headers);
    let mut connection = std::pin::pin!(builder.serve_connection(TokioIo::new(stream), service));
    let mut stop_requested = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                // A timeout, a reset or a malformed request: the client's doing, not the server's.
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            changed = stopping.wait_for(|stopping| *stopping), if !stop_requested => {
                stop_requested = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Errors of one connection (reset before it was accepted) are nobody's concern; others (out
/// of file descriptors) would repeat at once, so the loop pauses before accepting again.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(error.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(%error, "cannot accept connections; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr: addr.to_string(), source })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// In `squaremcp serve`, the monthly invoice job runs in-process: at start and then every
/// `interval`, it invoices the previous month until that month is complete (a complete month
/// costs one store read). The lease makes this safe next to the CLI or other replicas.
pub fn spawn_invoice_scheduler(job: squaremcp_core::billing::InvoiceRun, interval: std::time::Duration) {
    tokio::spawn(async move {
        loop {
            let month = squaremcp_core::billing::Month::of(job.clock.now()).previous();
            match job.run(month, &|| true, &|_| {}).await {
                Ok(report) if report.complete && report.customers_seen == 0 => {}
                Ok(report) => tracing::info!(%month, ?report, "invoice run"),
                Err(e) => tracing::warn!(%month, error = %e, "invoice run did not finish"),
            }
            tokio::time::sleep(interval).await;
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Instant;

    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    const TIMEOUTS: ReadTimeouts = ReadTimeouts { headers: Duration::from_millis(500), body: Duration::from_millis(500) };

    /// A server on a free loopback port, and the sender that stops it.
    async fn start(timeouts: ReadTimeouts) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let router = Router::new()
            .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }))
            .route("/echo", post(|body: axum::body::Bytes| async move { format!("{} bytes", body.len()) }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_until(listener, router, timeouts, (Duration::from_secs(5), std::future::ready(())), async move {
            let _ = stop.await;
        }));
        (addr, stop_tx)
    }

    /// Everything the server sends until it closes the connection, and how long that took.
    async fn read_until_closed(stream: &mut TcpStream, at_most: Duration) -> (String, Duration) {
        let started = Instant::now();
        let mut received = Vec::new();
        let read = tokio::time::timeout(at_most, stream.read_to_end(&mut received)).await;
        assert!(read.is_ok(), "the server still held the connection after {at_most:?}");
        (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
    }

    #[tokio::test]
    async fn a_client_sending_its_headers_a_byte_at_a_time_is_cut_off() {
        let (addr, _stop) = start(TIMEOUTS).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = b"GET /peer HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let started = Instant::now();
        let mut cut_off = false;
        for byte in request {
            if stream.write_all(&[*byte]).await.is_err() {
                cut_off = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            // A closed connection reads as end of stream (or an error once it was reset).
            let mut buffer = [0u8; 64];
            if let Ok(read) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buffer)).await {
                assert!(!matches!(read, Ok(n) if n > 0 && buffer.starts_with(b"HTTP/1.1 200")), "the slow request was answered");
                cut_off = true;
                break;
            }
        }
        let waited = started.elapsed();
        assert!(cut_off, "the whole request went through in {waited:?}, a byte every 50 ms");
        assert!(waited >= TIMEOUTS.headers && waited < Duration::from_secs(3), "cut off after {waited:?}");
    }

    #[tokio::test]
    async fn a_client_holding_back_its_body_gets_an_error_and_the_connection_closes() {
        let (addr, _stop) = start(TIMEOUTS).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly ten b").await.unwrap();
        let (answer, waited) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
        assert!(waited >= Duration::from_millis(400), "answered after {waited:?}, before the deadline");
    }

    #[tokio::test]
    async fn a_prompt_client_is_served_with_its_address_on_a_kept_alive_connection() {
        let (addr, _stop) = start(TIMEOUTS).await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello").await.unwrap();
        stream.write_all(b"GET /peer HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
        let (answers, _) = read_until_closed(&mut stream, Duration::from_secs(3)).await;
        assert_eq!(answers.matches("HTTP/1.1 200").count(), 2, "{answers}");
        assert!(answers.contains("5 bytes"), "{answers}");
        assert!(answers.ends_with("127.0.0.1"), "{answers}");
    }

    #[tokio::test]
    async fn stopping_closes_idle_connections_and_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(listener, Router::new(), TIMEOUTS, (Duration::from_secs(5), std::future::ready(())), async move {
            let _ = stop.await;
        }));
        let mut idle = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop_tx.send(()).unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(3), server).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
        let (nothing, _) = read_until_closed(&mut idle, Duration::from_secs(1)).await;
        assert_eq!(nothing, "");
    }

    #[tokio::test]
    async fn stopping_waits_for_the_finishing_work_within_the_grace_period() {
        let stopped_after = |finish_ms: u64, grace_ms: u64| async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let finish = tokio::time::sleep(Duration::from_millis(finish_ms));
            let started = Instant::now();
            let outcome = serve_until(listener, Router::new(), TIMEOUTS, (Duration::from_millis(grace_ms), finish), std::future::ready(())).await;
            (outcome.is_ok(), started.elapsed())
        };
        let (ok, took) = stopped_after(200, 5_000).await;
        assert!(ok && took >= Duration::from_millis(200), "waited for the finishing work: {took:?}");
        let (ok, took) = stopped_after(10_000, 300).await;
        assert!(!ok && took < Duration::from_secs(5), "gave up on it at the end of the grace period: {took:?}");
    }
}
