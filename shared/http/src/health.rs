//! The probes (`/healthz`: the process answers; `/readyz`: it can reach its store) and the
//! route groups `squaremcp serve --routes` can pick, as the Lambdas split them.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use http::StatusCode;

use crate::AppState;

/// A store that takes longer than this is as good as unreachable for a probe, whose own
/// timeout (Kubernetes' default is 1 s) would otherwise fire first without a log line.
const READY_TIMEOUT: Duration = Duration::from_millis(900);

/// The route groups of the HTTP edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteGroup {
    /// `/mcp`, `/openapi.json`, `/tools/{name}`.
    Mcp,
    /// Discovery, registration, authorization, token, revocation.
    Oauth,
    /// `/login`, `/logout`, `/account…`, `/connect/…`.
    Login,
    /// `/webhooks/…` (platforms calling in).
    Webhooks,
}

impl RouteGroup {
    pub const ALL: [Self; 4] = [Self::Mcp, Self::Oauth, Self::Login, Self::Webhooks];

    pub fn name(self) -> &'static str {
        match self {
            Self::Mcp => "mcp",
            Self::Oauth => "oauth",
            Self::Login => "login",
            Self::Webhooks => "webhooks",
        }
    }

    /// `mcp,oauth`: a comma-separated list of group names.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, String> {
        let mut groups = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let group = Self::ALL
                .into_iter()
                .find(|g| g.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("`{name}` is not a route group (mcp, oauth, login, webhooks)"))?;
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        if groups.is_empty() {
            return Err("name at least one route group (mcp, oauth, login, webhooks)".to_owned());
        }
        Ok(groups)
    }
}

pub fn router(state: AppState) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/readyz", get(ready)).with_state(state)
}

/// One read of an item that never exists: a round trip to SQLite or DynamoDB.
async fn ready(State(state): State<AppState>) -> Response {
    let (store, clock) = state.mcp.gateway().store_and_clock();
    match tokio_timeout(store.get_item("readyz#probe", clock.now())).await {
        Some(Ok(_)) => "ready".into_response(),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the store did not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
        None => {
            tracing::warn!(timeout_ms = READY_TIMEOUT.as_millis() as u64, "not ready: the store did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

async fn tokio_timeout<T>(future: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(READY_TIMEOUT, future).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_groups_are_named_and_checked() {
        assert_eq!(RouteGroup::parse_list("mcp, OAuth,mcp"), Ok(vec![RouteGroup::Mcp, RouteGroup::Oauth]));
        assert_eq!(RouteGroup::parse_list("login,webhooks"), Ok(vec![RouteGroup::Login, RouteGroup::Webhooks]));
        assert!(RouteGroup::parse_list("mcp,admin").is_err_and(|e| e.contains("`admin`")));
        assert!(RouteGroup::parse_list(" , ").is_err());
    }
}
