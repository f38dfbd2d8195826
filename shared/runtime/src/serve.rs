//! `squaremcp serve`: every route group on one listener, until SIGTERM or Ctrl-C.

use std::future::IntoFuture as _;

use axum::Router;
use tokio::net::TcpListener;

use crate::StartError;

/// Serves until SIGTERM or Ctrl-C, then stops accepting and lets the requests in flight finish
/// (their metering and call records are written before their answers), for at most `grace`:
/// under Kubernetes, `terminationGracePeriodSeconds` should leave a few seconds beyond it.
pub async fn serve(listener: TcpListener, router: Router, grace: std::time::Duration) -> Result<(), StartError> {
    // The peer address feeds the rate limits of login and client registration.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    let deadline = async move {
        let _ = stopped.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server.into_future() => {
            tracing::info!("stopped: every request answered");
            result.map_err(StartError::Serve)
        }
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still in flight after the grace period");
            Err(StartError::ShutdownTimeout(grace.as_secs()))
        }
    }
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
