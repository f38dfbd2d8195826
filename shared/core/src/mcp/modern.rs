//! MCP 2026-07-28, the stateless revision: no `initialize`, no sessions; every request names its
//! protocol version in `params._meta`, and on HTTP the transport mirrors the version, the method
//! and the tool name into `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`. Intermediaries
//! may route or rate-limit on those headers while this server executes the body, so a header
//! that disagrees with the body is refused (HeaderMismatch) rather than trusted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// Revisions served the stateless way, newest first.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];

/// `_meta` keys every 2026-07-28 request carries.
pub const PROTOCOL_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key under which results identify the server.
pub const SERVER_INFO_KEY: &str = "io.modelcontextprotocol/serverInfo";

/// Header and body disagree, or a required header is missing or malformed (HTTP 400).
pub const HEADER_MISMATCH: i64 = -32020;
/// The requested revision is not served here; `data` lists the ones that are (HTTP 400).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// How long a client may reuse a `tools/list` page. The list changes when the customer connects
/// or removes a platform, which a client does not see in a minute; a longer hint would hide it.
pub const TOOLS_LIST_TTL_MS: u64 = 60_000;
/// `server/discover` changes only with a deployment.
pub const DISCOVER_TTL_MS: u64 = 3_600_000;

/// The MCP request headers, as the HTTP edge read them. `None` = absent; a value that is not
/// visible ASCII arrives as `Some` of something that cannot match a body value.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestHeaders<'a> {
    pub protocol_version: Option<&'a str>,
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl<'a> RequestHeaders<'a> {
    /// Only the version header, as older callers pass it.
    pub fn version_only(protocol_version: Option<&'a str>) -> Self {
        Self {
            protocol_version,
            ..Self::default()
        }
    }
}

/// The revision a request declares in `params._meta`, if it declares one.
pub fn declared_version(message: &Value) -> Option<&Value> {
    message
        .get("params")?
        .get("_meta")?
        .get(PROTOCOL_VERSION_KEY)
}

/// Why a 2026-07-28 request is refused before it reaches its method (answered with HTTP 400).
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
}

fn mismatch(message: String) -> Refusal {
    Refusal {
        code: HEADER_MISMATCH,
        message: format!("Header mismatch: {message}"),
    }
}

/// The checks of the Streamable HTTP transport's §Server Validation for one request object:
/// `MCP-Protocol-Version` equals `_meta`'s version, `Mcp-Method` equals `method`, and
/// `Mcp-Name` equals `params.name` (`params.uri` for resources) where the method names one.
pub fn validate_headers(
    headers: &RequestHeaders<'_>,
    message: &Map<String, Value>,
) -> Result<(), Refusal> {
    let declared = message
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(PROTOCOL_VERSION_KEY));
    match (headers.protocol_version, declared) {
        (None, _) => {
            return Err(mismatch(
                "the MCP-Protocol-Version header is required".to_owned(),
            ));
        }
        (Some(header), Some(Value::String(body))) if header == body => {}
        (Some(header), Some(Value::String(body))) => {
            return Err(mismatch(format!(
                "MCP-Protocol-Version header value '{header}' does not match body value '{body}'"
            )));
        }
        (Some(header), _) => {
            return Err(mismatch(format!(
                "MCP-Protocol-Version is '{header}' but params._meta lacks a string `{PROTOCOL_VERSION_KEY}`"
            )));
        }
    }
    // Notifications have no header rules in this revision; requests all need Mcp-Method.
    if !message.contains_key("id") {
        return Ok(());
    }
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match headers.method {
        None => return Err(mismatch("the Mcp-Method header is required".to_owned())),
        Some(header) if header != method => {
            return Err(mismatch(format!(
                "Mcp-Method header value '{header}' does not match body value '{method}'"
            )));
        }
        Some(_) => {}
    }
    let name_field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return Ok(()),
    };
    // A missing or non-string body name is the method's own error (-32602), reported later.
    let Some(body_name) = message
        .get("params")
        .and_then(|p| p.get(name_field))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let Some(header) = headers.name else {
        return Err(mismatch(format!(
            "the Mcp-Name header is required for {method}"
        )));
    };
    let decoded = decode_header_value(header)
        .ok_or_else(|| mismatch("Mcp-Name header value is malformed".to_owned()))?;
    if decoded != body_name {
        return Err(mismatch(format!(
            "Mcp-Name header value '{header}' does not match body value '{body_name}'"
        )));
    }
    Ok(())
}

/// A header value, with the `=?base64?…?=` sentinel (for values that are not plain visible
/// ASCII) decoded. `None` when the value holds characters a header may not, or bad base64.
pub fn decode_header_value(value: &str) -> Option<String> {
    if let Some(encoded) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        let bytes = STANDARD.decode(encoded).ok()?;
        return String::from_utf8(bytes).ok();
    }
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
        .then(|| value.to_owned())
}

/// `params._meta` must declare the client's capabilities (an object) on every request.
pub fn check_client_capabilities(params: &Map<String, Value>) -> Result<(), String> {
    match params
        .get("_meta")
        .and_then(|m| m.get(CLIENT_CAPABILITIES_KEY))
    {
        Some(Value::Object(_)) => Ok(()),
        _ => Err(format!(
            "Invalid params: params._meta must carry `{CLIENT_CAPABILITIES_KEY}` (an object)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn message(body: Value) -> Map<String, Value> {
        body.as_object().unwrap().clone()
    }

    fn call(name: &str) -> Map<String, Value> {
        message(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": name, "_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}}}}),
        )
    }

    fn headers<'a>(method: Option<&'a str>, name: Option<&'a str>) -> RequestHeaders<'a> {
        RequestHeaders {
            protocol_version: Some("2026-07-28"),
            method,
            name,
        }
    }

    #[test]
    fn matching_headers_pass() {
        assert_eq!(
            validate_headers(
                &headers(Some("tools/call"), Some("telegram_get_me")),
                &call("telegram_get_me")
            ),
            Ok(())
        );
    }

    #[test]
    fn each_disagreement_is_a_header_mismatch() {
        let cases = [
            (
                headers(Some("tools/list"), Some("telegram_get_me")),
                "Mcp-Method",
            ),
            (
                headers(Some("tools/call"), Some("telegram_send_message")),
                "Mcp-Name",
            ),
            (
                headers(None, Some("telegram_get_me")),
                "Mcp-Method header is required",
            ),
            (
                headers(Some("tools/call"), None),
                "Mcp-Name header is required",
            ),
            (
                RequestHeaders {
                    protocol_version: None,
                    method: Some("tools/call"),
                    name: Some("telegram_get_me"),
                },
                "MCP-Protocol-Version",
            ),
            (
                RequestHeaders {
                    protocol_version: Some("2025-11-25"),
                    method: Some("tools/call"),
                    name: Some("telegram_get_me"),
                },
                "'2025-11-25'",
            ),
            // Values are case-sensitive.
            (
                headers(Some("Tools/Call"), Some("telegram_get_me")),
                "Mcp-Method",
            ),
        ];
        for (headers, expected) in cases {
            let refusal = validate_headers(&headers, &call("telegram_get_me")).unwrap_err();
            assert_eq!(refusal.code, HEADER_MISMATCH, "{headers:?}");
            assert!(
                refusal.message.contains(expected),
                "{headers:?}: {}",
                refusal.message
            );
        }
    }

    #[test]
    fn a_body_without_the_declared_version_mismatches_the_header() {
        let body =
            message(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}));
        assert_eq!(
            validate_headers(&headers(Some("tools/list"), None), &body)
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
    }

    #[test]
    fn base64_names_are_decoded_before_comparing() {
        let body = message(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "météo", "_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}}}}),
        );
        let encoded = format!("=?base64?{}?=", STANDARD.encode("météo"));
        assert_eq!(
            validate_headers(&headers(Some("tools/call"), Some(&encoded)), &body),
            Ok(())
        );
        let other = format!("=?base64?{}?=", STANDARD.encode("meteo"));
        assert_eq!(
            validate_headers(&headers(Some("tools/call"), Some(&other)), &body)
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
        assert_eq!(
            validate_headers(&headers(Some("tools/call"), Some("=?base64?!!?=")), &body)
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
    }

    #[test]
    fn header_values_with_control_characters_are_malformed() {
        assert_eq!(
            decode_header_value("plain name"),
            Some("plain name".to_owned())
        );
        assert_eq!(decode_header_value("bad\nvalue"), None);
        assert_eq!(decode_header_value("caf\u{e9}"), None);
    }

    #[test]
    fn notifications_need_only_the_version() {
        let body = message(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {
            "_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}}),
        );
        assert_eq!(validate_headers(&headers(None, None), &body), Ok(()));
    }

    #[test]
    fn client_capabilities_are_required() {
        assert!(
            check_client_capabilities(call("x").get("params").unwrap().as_object().unwrap())
                .is_ok()
        );
        let params = message(json!({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}));
        assert!(
            check_client_capabilities(&params)
                .unwrap_err()
                .contains(CLIENT_CAPABILITIES_KEY)
        );
    }
}
