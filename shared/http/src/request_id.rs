//! A request id for logs: the one API Gateway or a proxy assigned, or a fresh one.

use http::HeaderMap;

const CANDIDATES: [&str; 3] = ["x-request-id", "apigw-requestid", "x-amzn-requestid"];

pub fn request_id(headers: &HeaderMap) -> String {
    CANDIDATES
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(squaremcp_core::random::hex_id::<8>)
}
