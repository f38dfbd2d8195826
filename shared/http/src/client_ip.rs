//! The caller's IP address, for rate limits: set by the Lambda adapter from API Gateway's
//! `sourceIp`, or under `squaremcp serve` from the TCP peer, and from `X-Forwarded-For` only when
//! that peer is a trusted proxy (`crate::forwarded`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;

/// Inserted as a request extension by whatever knows the caller's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The caller's address as text, `unknown` when nothing told us.
pub struct PeerIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|ip| ip.0)
            .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()));
        Ok(Self(ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())))
    }
}
