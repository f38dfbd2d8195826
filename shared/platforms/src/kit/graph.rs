//! What Meta's Graph API platforms (Facebook Pages, Instagram) share: the error envelope
//! `{"error": {"message", "type", "code", "error_subcode", "error_user_msg", "fbtrace_id"}}`,
//! read by its `code` (Graph answers 400 where others send 401 or 429), and Graph's list pages
//! `{"data": [...], "paging": {"cursors": {"after"}, "next"}}`.
//!
//! WhatsApp reads the same envelope and adds its own codes (131xxx) through `interpret_with`.

use serde_json::{Value, json};
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::Answer;
use super::http::retry_after_header;

/// What a platform says in its messages: its name, how to reconnect, which permission to grant.
pub struct GraphWords {
    /// `Facebook`, `Instagram`.
    pub name: &'static str,
    /// What to do when the token no longer works.
    pub reconnect: &'static str,
    /// The permissions the tools need, for `permission_missing`.
    pub permissions: &'static str,
}

/// A Graph answer as JSON, or the failure it means.
pub fn interpret(words: &GraphWords, operation: &str, answer: &Answer<'_>) -> Result<Value, ToolFailure> {
    interpret_with(words, operation, answer, |_| None)
}

/// As `interpret`, but the platform's own codes come first: `specific` maps the errors it knows
/// and answers `None` for the rest, which are read as every Graph platform reads them.
pub fn interpret_with(
    words: &GraphWords,
    operation: &str,
    answer: &Answer<'_>,
    specific: impl FnOnce(&GraphError) -> Option<ToolFailure>,
) -> Result<Value, ToolFailure> {
    let (status, body) = (answer.status, serde_json::from_slice::<Value>(answer.body).ok());
    let name = words.name;
    if (200..300).contains(&status) {
        return body.ok_or_else(|| ToolFailure::new(FailureKind::Upstream, format!("{name} answered {operation} with a body that is not JSON.")));
    }
    match body.as_ref().and_then(|b| b.get("error")).filter(|e| e.is_object()) {
        Some(error) => {
            let error = GraphError::read(error);
            Err(specific(&error).unwrap_or_else(|| failure(words, operation, status, &error, answer)))
        }
        None => Err(without_envelope(words, operation, status, answer)),
    }
}

/// Graph's error envelope as the messages use it.
pub struct GraphError {
    pub code: i64,
    pub subcode: Option<i64>,
    /// Meta's own words: the message (or the one meant for the user), the details when there
    /// are any, the code and subcode — never the raw body.
    pub said: String,
    pub transient: bool,
}

impl GraphError {
    fn read(error: &Value) -> Self {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let subcode = error.get("error_subcode").and_then(Value::as_i64);
        let text = |pointer: &str| error.pointer(pointer).and_then(Value::as_str).filter(|t| !t.is_empty());
        let message = text("/error_user_msg").or_else(|| text("/message")).unwrap_or("no message");
        let details = text("/error_data/details").map(|d| format!(" — {d}")).unwrap_or_default();
        let subcode_said = subcode.map(|s| format!(", subcode {s}")).unwrap_or_default();
        Self {
            code,
            subcode,
            said: format!("{message}{details} (code {code}{subcode_said})"),
            transient: error.get("is_transient").and_then(Value::as_bool) == Some(true),
        }
    }
}

/// A rate-limit refusal of `whom`, with the wait from `Retry-After` or Graph's usage header.
pub fn rate_limited(name: &str, whom: &str, error: &GraphError, answer: &Answer<'_>) -> ToolFailure {
    let retry_after = retry_after_header(answer.headers).or_else(|| usage_wait(answer));
    let wait = retry_after.map_or("wait a little and retry".to_owned(), |seconds| format!("retry after {seconds} seconds"));
    ToolFailure::rate_limited(format!("{name} is rate limiting {whom} ({}); {wait}.", error.said), retry_after)
}

/// An answer without Graph's envelope: a proxy, a load balancer or an outage.
fn without_envelope(words: &GraphWords, operation: &str, status: u16, answer: &Answer<'_>) -> ToolFailure {
    let name = words.name;
    match status {
        401 => ToolFailure::new(FailureKind::AuthRevoked, format!("{name} rejected the access token for {operation} (HTTP 401). {}", words.reconnect)),
        429 => ToolFailure::rate_limited(format!("{name} is rate limiting {operation}; wait and retry."), retry_after_header(answer.headers)),
        500..=599 => ToolFailure::new(FailureKind::UpstreamTransient, format!("{name} had a problem with {operation} (HTTP {status}). Try again shortly.")),
        _ => ToolFailure::new(FailureKind::Upstream, format!("{name} answered {operation} with HTTP {status} and no error details.")),
    }
}

/// Graph's envelope, normalised by `code` (and `error_subcode` for 190).
fn failure(words: &GraphWords, operation: &str, status: u16, error: &GraphError, answer: &Answer<'_>) -> ToolFailure {
    let name = words.name;
    let GraphError { code, subcode, said, transient } = error;
    let (code, subcode, transient) = (*code, *subcode, *transient);
    let fail = |kind, message: String| ToolFailure::new(kind, message);
    match code {
        // 463: expired (the gateway refreshes and retries once); every other subcode means the
        // person must act (password changed 460, app removed 458, checkpoint 459/464, invalid 467).
        190 => match subcode {
            None | Some(463) => fail(FailureKind::AuthExpired, format!("{name} says the access token expired: {said}. {}", words.reconnect)),
            Some(_) => fail(FailureKind::AuthRevoked, format!("{name} no longer accepts the access token: {said}. {}", words.reconnect)),
        },
        102 => fail(FailureKind::AuthExpired, format!("{name} ended the token's session: {said}. {}", words.reconnect)),
        10 | 200..=299 => fail(
            FailureKind::PermissionMissing,
            format!("{name} refused {operation}: {said}. The token needs {}.", words.permissions),
        ),
        4 | 17 | 32 | 341 | 613 | 80001 | 80002 => {
            let whom = match code {
                17 => "this user",
                32 | 80001 => "this Page",
                80002 => "this Instagram account",
                _ => "the gateway's app",
            };
            rate_limited(name, whom, error, answer)
        }
        368 => fail(
            FailureKind::QuotaExhausted,
            format!("{name} has temporarily blocked this account from posting: {said}. Waiting minutes will not help."),
        ),
        // The Instagram publishing limit (50 posts in 24 hours).
        9 | 25 if subcode == Some(2_207_042) => {
            fail(FailureKind::QuotaExhausted, format!("{name} refused {operation}: the account reached its publishing limit for the last 24 hours: {said}."))
        }
        100 if subcode == Some(33) => fail(
            FailureKind::NotFound,
            format!("{name} does not know the object {operation} names, or the token cannot see it: {said}."),
        ),
        803 => fail(FailureKind::NotFound, format!("{name} does not know an object {operation} names: {said}.")),
        1 | 2 => fail(FailureKind::UpstreamTransient, format!("{name} had a temporary problem with {operation}: {said}. Try again shortly.")),
        _ if transient => fail(FailureKind::UpstreamTransient, format!("{name} had a temporary problem with {operation}: {said}. Try again shortly.")),
        100 | 506 | 324 | 352 | 9004 | 36000..=36999 => fail(FailureKind::InvalidInput, format!("{name} rejected {operation}: {said}.")),
        _ if status >= 500 => fail(FailureKind::UpstreamTransient, format!("{name} had a problem with {operation} (HTTP {status}): {said}. Try again shortly.")),
        _ => fail(FailureKind::Upstream, format!("{name} answered {operation} with HTTP {status}: {said}.")),
    }
}

/// The wait from `X-Business-Use-Case-Usage` (`estimated_time_to_regain_access`, in minutes),
/// when Graph sends no `Retry-After`.
fn usage_wait(answer: &Answer<'_>) -> Option<u64> {
    let header = answer.headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let usage: Value = serde_json::from_str(header).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access").and_then(Value::as_u64))
        .max()?;
    (minutes > 0).then_some(minutes * 60)
}

/// A Graph list page `{"data", "paging"}` as `{"<key>": [...], "next": cursor|null}`: `next` is
/// the `after` cursor only when Graph says there is a next page.
pub fn page(name: &str, operation: &str, key: &str, result: &Value) -> Result<Value, ToolFailure> {
    let Some(data) = result.get("data").and_then(Value::as_array) else {
        return Err(ToolFailure::new(FailureKind::Upstream, format!("{name} answered {operation} without `data`.")));
    };
    let more = result.pointer("/paging/next").is_some_and(Value::is_string);
    let next = result.pointer("/paging/cursors/after").filter(|_| more).cloned().unwrap_or(Value::Null);
    Ok(json!({ key: data, "next": next }))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;

    use super::*;

    const WORDS: GraphWords = GraphWords { name: "Facebook", reconnect: "Reconnect.", permissions: "pages_manage_posts" };

    fn refusal(status: u16, error: Value, headers: &HeaderMap) -> ToolFailure {
        let body = json!({ "error": error }).to_string();
        interpret(&WORDS, "Create Post", &Answer { status, headers, body: body.as_bytes() }).expect_err("a refusal")
    }

    #[test]
    fn codes_and_subcodes_map_to_normalised_kinds() {
        let headers = HeaderMap::new();
        for (error, kind) in [
            (json!({"code": 190}), FailureKind::AuthExpired),
            (json!({"code": 190, "error_subcode": 463}), FailureKind::AuthExpired),
            (json!({"code": 190, "error_subcode": 460}), FailureKind::AuthRevoked),
            (json!({"code": 190, "error_subcode": 458}), FailureKind::AuthRevoked),
            (json!({"code": 190, "error_subcode": 467}), FailureKind::AuthRevoked),
            (json!({"code": 102}), FailureKind::AuthExpired),
            (json!({"code": 10}), FailureKind::PermissionMissing),
            (json!({"code": 200}), FailureKind::PermissionMissing),
            (json!({"code": 299}), FailureKind::PermissionMissing),
            (json!({"code": 4}), FailureKind::RateLimited),
            (json!({"code": 17}), FailureKind::RateLimited),
            (json!({"code": 32}), FailureKind::RateLimited),
            (json!({"code": 613}), FailureKind::RateLimited),
            (json!({"code": 80001}), FailureKind::RateLimited),
            (json!({"code": 368}), FailureKind::QuotaExhausted),
            (json!({"code": 9, "error_subcode": 2_207_042}), FailureKind::QuotaExhausted),
            (json!({"code": 100}), FailureKind::InvalidInput),
            (json!({"code": 506}), FailureKind::InvalidInput),
            (json!({"code": 100, "error_subcode": 33}), FailureKind::NotFound),
            (json!({"code": 1}), FailureKind::UpstreamTransient),
            (json!({"code": 2}), FailureKind::UpstreamTransient),
            (json!({"code": 99999, "is_transient": true}), FailureKind::UpstreamTransient),
            (json!({"code": 99999}), FailureKind::Upstream),
        ] {
            assert_eq!(refusal(400, error.clone(), &headers).kind, kind, "{error}");
        }
        assert_eq!(refusal(503, json!({"code": 99999}), &headers).kind, FailureKind::UpstreamTransient);
    }

    #[test]
    fn messages_keep_metas_words_and_rate_limits_carry_the_wait() {
        let failure = refusal(400, json!({"code": 190, "error_subcode": 463, "message": "Session has expired on Friday"}), &HeaderMap::new());
        assert!(failure.message.contains("Session has expired on Friday (code 190, subcode 463)"), "{}", failure.message);
        let mut headers = HeaderMap::new();
        headers.insert("x-business-use-case-usage", r#"{"1":[{"type":"pages","estimated_time_to_regain_access":2}]}"#.parse().expect("header"));
        assert_eq!(refusal(400, json!({"code": 32}), &headers).retry_after, Some(120));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "3".parse().expect("header"));
        assert_eq!(refusal(400, json!({"code": 4}), &headers).retry_after, Some(3));
    }

    #[test]
    fn pages_give_the_cursor_only_when_there_is_more() {
        let more = json!({"data": [1], "paging": {"cursors": {"after": "A"}, "next": "https://…"}});
        assert_eq!(page("F", "op", "posts", &more).expect("a page"), json!({"posts": [1], "next": "A"}));
        let last = json!({"data": [], "paging": {"cursors": {"after": "A"}}});
        assert_eq!(page("F", "op", "posts", &last).expect("a page"), json!({"posts": [], "next": null}));
        assert!(page("F", "op", "posts", &json!({})).is_err());
    }
}
