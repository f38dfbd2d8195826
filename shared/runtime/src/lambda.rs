//! The Lambda side: each function's `main` hands its route group to [`run`].

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use lambda_http::request::RequestContext;
use squaremcp_http::{AppState, ClientIp};

pub use lambda_http::Error;

/// Builds state once per cold start (configuration, SDK clients; no network call: the data
/// key is fetched on first use), then serves events until the sandbox is frozen or shut down.
pub async fn run(route_group: fn(AppState) -> Router) -> Result<(), Error> {
    let (config, state) = crate::build_from_env().await?;
    crate::init_logging(&config.log_filter, config.log_format);
    lambda_http::run(with_client_ip(route_group(state))).await
}

/// Tells the routers the caller's address, from API Gateway's `sourceIp` (rate limits).
fn with_client_ip(router: Router) -> Router {
    router.layer(from_fn(|mut request: Request, next: Next| async move {
        let ip = match request.extensions().get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.as_deref().and_then(|ip| ip.parse().ok()),
            _ => None,
        };
        if let Some(ip) = ip {
            request.extensions_mut().insert(ClientIp(ip));
        }
        let response: Response = next.run(request).await;
        response
    }))
}

/// The same adapter `lambda_http::run` uses, for feeding sample events through a handler
/// in-process (tests, `events/`).
pub async fn invoke(router: Router, event: &str) -> Result<serde_json::Value, Error> {
    use lambda_http::Service as _;
    use lambda_http::request::LambdaRequest;
    use lambda_http::{Adapter, Context, LambdaEvent};

    let request: LambdaRequest = serde_json::from_str(event)?;
    let mut adapter = Adapter::from(with_client_ip(router));
    let response = adapter.call(LambdaEvent::new(request, Context::default())).await?;
    Ok(serde_json::to_value(response)?)
}

/// The `invoice-cron` function: each scheduled event invoices the previous month (or the
/// `month` the event names), stopping 15 s before the invocation's deadline; the next scheduled
/// invocation resumes from the checkpoint.
pub async fn run_invoices() -> Result<(), Error> {
    use lambda_http::lambda_runtime::{run, service_fn};

    let config = crate::Config::from_env()?;
    crate::init_logging(&config.log_filter, config.log_format);
    let job = crate::invoice_run(&config, &crate::Backends::from_config(&config).await?)?;
    let job = &job;
    run(service_fn(move |event| async move { invoice_event(job, event).await })).await
}

/// One invocation: the report of the run, as the function's result.
pub async fn invoice_event(
    job: &squaremcp_core::billing::InvoiceRun,
    event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, Error> {
    use squaremcp_core::billing::Month;

    let month = match event.payload.get("month").and_then(serde_json::Value::as_str) {
        Some(text) => Month::parse(text)?,
        None => Month::of(job.clock.now()).previous(),
    };
    // The runtime gives the deadline in epoch milliseconds; 0 means none (local invocations).
    let deadline_ms = event.context.deadline;
    let keep_going = move || {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        deadline_ms == 0 || now_ms + 15_000 < deadline_ms
    };
    let report = job.run(month, &keep_going, &|_| {}).await?;
    tracing::info!(%month, ?report, "invoice run");
    Ok(serde_json::json!({"month": month, "report": report}))
}

/// What a function builds at a cold start, set up for the sample events in `events/`: the
/// embedded backends in `data_dir`, the public URL `https://mcp.example.com`, the admin key
/// `sample-admin-key`, a fixed JWT secret, and the WhatsApp app secret `sample-app-secret` and
/// verify token `sample-verify-token` (see `events/README.md`). For tests and local runs.
#[cfg(feature = "embedded")]
pub fn sample_state(
    data_dir: &std::path::Path,
) -> Result<(std::sync::Arc<squaremcp_core::Gateway>, AppState), crate::StartError> {
    let data_dir = data_dir.display().to_string();
    let config = crate::Config::from_lookup(|name| match name {
        "SQUAREMCP_DATA_DIR" => Some(data_dir.clone()),
        "SQUAREMCP_PUBLIC_URL" => Some("https://mcp.example.com".to_owned()),
        "SQUAREMCP_ADMIN_KEY" => Some("sample-admin-key".to_owned()),
        "SQUAREMCP_JWT_SECRET" => Some("sample-jwt-secret-of-at-least-32-bytes!!".to_owned()),
        "SQUAREMCP_WHATSAPP_APP_SECRET" => Some("sample-app-secret".to_owned()),
        "SQUAREMCP_WHATSAPP_VERIFY_TOKEN" => Some("sample-verify-token".to_owned()),
        _ => None,
    })?;
    let gateway = crate::gateway(&config, crate::Backends::embedded(&config)?);
    let state = crate::app_state(&config, gateway.clone())?;
    Ok((gateway, state))
}

/// The `delivery-retry` function: each SQS batch from the retry queue, one delivery job per
/// record, answered with the records to retry (`batchItemFailures`; the event source mapping
/// has `ReportBatchItemFailures`), so that one failing record does not bring its batch back.
pub async fn run_delivery_retry() -> Result<(), Error> {
    use lambda_http::lambda_runtime::{run, service_fn};

    let config = crate::Config::from_env()?;
    crate::init_logging(&config.log_filter, config.log_format);
    let backends = crate::Backends::from_config(&config).await?;
    let deliverer = crate::deliverer(&config, &backends)?
        .ok_or("delivery-retry needs SQUAREMCP_RETRY_QUEUE_URL and SQUAREMCP_DEAD_LETTER_QUEUE_URL")?;
    let deliverer = deliverer.as_ref();
    run(service_fn(move |event: lambda_http::lambda_runtime::LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(delivery_batch(deliverer, &event.payload).await)
    }))
    .await
}

/// One SQS batch: every record processed concurrently; the SqsBatchResponse names the records
/// whose processing failed (and records that are not SQS messages, which cannot be processed).
pub async fn delivery_batch(deliverer: &squaremcp_webhooks::Deliverer, event: &serde_json::Value) -> serde_json::Value {
    use serde_json::{Value, json};

    let records = event.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let outcomes = futures_util::future::join_all(records.iter().map(|record| async move {
        let id = record.get("messageId").and_then(Value::as_str)?;
        let Some(body) = record.get("body").and_then(Value::as_str) else {
            tracing::error!(message_id = id, "an SQS record without a body");
            return Some(id);
        };
        match deliverer.process(body).await {
            Ok(processed) => {
                tracing::debug!(message_id = id, ?processed, "delivery job");
                None
            }
            Err(e) => {
                tracing::warn!(message_id = id, error = %e, "a delivery job could not be processed; SQS will redeliver it");
                Some(id)
            }
        }
    }))
    .await;
    let failures: Vec<Value> = outcomes.into_iter().flatten().map(|id| json!({"itemIdentifier": id})).collect();
    json!({"batchItemFailures": failures})
}
