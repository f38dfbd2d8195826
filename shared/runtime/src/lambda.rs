//! The Lambda side: each function's `main` hands its route group to [`run`].

use axum::Router;
use squaremcp_http::AppState;

pub use lambda_http::Error;

/// Builds state once per cold start (configuration, SDK clients; no network call: the data
/// key is fetched on first use), then serves events until the sandbox is frozen or shut down.
pub async fn run(route_group: fn(AppState) -> Router) -> Result<(), Error> {
    let (config, state) = crate::build_from_env().await?;
    crate::init_logging(&config.log_filter, config.log_format);
    lambda_http::run(route_group(state)).await
}

/// The same adapter `lambda_http::run` uses, for feeding sample events through a handler
/// in-process (tests, `events/`).
pub async fn invoke(router: Router, event: &str) -> Result<serde_json::Value, Error> {
    use lambda_http::Service as _;
    use lambda_http::request::LambdaRequest;
    use lambda_http::{Adapter, Context, LambdaEvent};

    let request: LambdaRequest = serde_json::from_str(event)?;
    let mut adapter = Adapter::from(router);
    let response = adapter.call(LambdaEvent::new(request, Context::default())).await?;
    Ok(serde_json::to_value(response)?)
}
