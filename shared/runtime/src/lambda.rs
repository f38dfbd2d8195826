//! The Lambda side: each function's `main` hands its route group to [`run`].

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use lambda_http::request::RequestContext;
use squaremcp_http::{AppState, ClientIp};

pub use lambda_http::Error;

/// Builds state once per cold start (no network call), then serves events until the
/// sandbox is frozen or shut down.
pub async fn run(route_group: fn(AppState) -> Router) -> Result<(), Error> {
    let (config, state) = crate::build_from_env()?;
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
