//! The platform contract: what every row of the registration table must honour, checked over
//! every registered platform the same way (as `shared/store-conformance` does for stores).
//!
//! Declarations: tool names carry the platform prefix and are unique; schemas use only the
//! keywords the gateway's validator supports; logged arguments are properties; annotations are
//! consistent; the credential example parses; the health probe is a read-only tool; every tool is
//! in `docs/platforms.md`.
//!
//! Behaviour, against each platform's mock: every tool, called with the smallest valid
//! arguments, succeeds and its output validates against its output schema; each injected fault
//! becomes the same normalised kind on every platform; and a canary credential never reaches a
//! log line, a result or a failure message, even when the platform echoes it back.
//!
//! A platform that is not an HTTP API (email, Obsidian) says so in its fixture (`Fixture::not_http`, with
//! the reason): the mock checks skip it by name, and instead each of its tools must refuse the
//! fixture's loopback server under the default network policy, before sending anything, with the
//! canary never shown. Its behaviour against a real server is in the end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod logs;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use squaremcp_core::tool::{FailureKind, PlatformModule, Tool};
use squaremcp_core::{Secret, schema};
use squaremcp_platform_mocks::{Fault, Reply};
use squaremcp_platforms::kit::{PlatformContext, PlatformEntry};
use squaremcp_platforms::{PLATFORMS, http_client};

/// The keywords `squaremcp_core::schema::validate` understands, plus annotations it may ignore.
const SUPPORTED_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "items",
    "minItems",
    "maxItems",
    "description",
    "title",
];

fn module(entry: &'static PlatformEntry, origin: String) -> Box<dyn PlatformModule> {
    entry.module(&PlatformContext::new(http_client(), origin))
}

fn tools(entry: &'static PlatformEntry) -> Vec<Arc<dyn Tool>> {
    module(entry, entry.origin.to_owned()).tools()
}

#[test]
fn every_platform_is_registered_once_and_every_tool_name_is_prefixed_and_unique() {
    let mut platforms = HashSet::new();
    let mut names = HashSet::new();
    for entry in PLATFORMS {
        assert!(platforms.insert(entry.platform), "{} is registered twice", entry.platform);
        let tools = tools(entry);
        assert!(!tools.is_empty(), "{} has no tools", entry.platform);
        for tool in tools {
            let definition = tool.definition();
            let prefix = format!("{}_", entry.platform.as_str());
            assert!(definition.name.starts_with(&prefix), "{} lacks the prefix {prefix}", definition.name);
            assert_eq!(definition.platform, entry.platform, "{}", definition.name);
            assert!(names.insert(definition.name.clone()), "{} is declared twice", definition.name);
        }
    }
}

#[test]
fn schemas_use_only_supported_keywords_and_logged_arguments_are_properties() {
    for entry in PLATFORMS {
        for tool in tools(entry) {
            let definition = tool.definition();
            let name = &definition.name;
            check_keywords(&definition.input_schema, &format!("{name} input"));
            assert_eq!(definition.input_schema["type"], "object", "{name}");
            assert_eq!(definition.input_schema["additionalProperties"], false, "{name}: unknown arguments must be refused");
            let properties = definition.input_schema["properties"].as_object().expect("properties");
            for required in definition.input_schema["required"].as_array().expect("required") {
                let required = required.as_str().expect("a name");
                assert!(properties.contains_key(required), "{name}: required `{required}` is not a property");
            }
            for logged in &definition.logged_arguments {
                assert!(properties.contains_key(*logged), "{name}: logged `{logged}` is not a property");
            }
            for (argument, schema) in properties {
                assert!(schema.get("description").and_then(Value::as_str).is_some_and(|d| !d.is_empty()), "{name}.{argument} has no description");
            }
            if let Some(output) = &definition.output_schema {
                check_keywords(output, &format!("{name} output"));
                assert_eq!(output["type"], "object", "{name}: structuredContent must be an object");
            }
        }
    }
}

#[test]
fn annotations_are_consistent_and_texts_are_present() {
    for entry in PLATFORMS {
        for tool in tools(entry) {
            let definition = tool.definition();
            let hints = definition.annotations;
            let name = &definition.name;
            assert!(!definition.title.is_empty() && definition.description.len() >= 20, "{name}: title and description");
            // Every platform tool reaches outside the gateway, except reads it answers from its own
            // records (WhatsApp's message statuses, which arrive by webhook).
            assert!(hints.open_world || hints.read_only, "{name}: a tool that changes something reaches outside the gateway");
            if hints.read_only {
                assert!(!hints.destructive, "{name}: a read-only tool cannot be destructive");
                assert!(hints.idempotent, "{name}: a read-only tool is idempotent");
            }
        }
    }
}

#[test]
fn the_credential_example_parses_and_the_health_probe_is_a_read_only_tool() {
    for entry in PLATFORMS {
        let example: Value = serde_json::from_str(entry.credential_example).expect("the example is JSON");
        assert_eq!((entry.check_credential)(&example), Ok(()), "{}", entry.platform);
        assert!((entry.check_credential)(&json!("not an object")).is_err(), "{}", entry.platform);
        if let Some(app) = entry.oauth {
            assert_eq!(app.platform, entry.platform, "{}: its OAuth app is another platform's", entry.platform);
        }
        if let Some(probe) = entry.health_probe {
            let name = format!("{}_{probe}", entry.platform.as_str());
            let tool = tools(entry).into_iter().find(|t| t.definition().name == name);
            let tool = tool.unwrap_or_else(|| panic!("{}: health probe {name} is not a tool", entry.platform));
            assert!(tool.definition().annotations.read_only, "{name}: a health probe must only read");
        }
    }
}

#[test]
fn every_tool_is_documented_in_docs_platforms_md() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/platforms.md");
    let docs = std::fs::read_to_string(path).expect("docs/platforms.md");
    for entry in PLATFORMS {
        for tool in tools(entry) {
            let name = &tool.definition().name;
            assert!(docs.contains(&format!("`{name}`")), "{name} is not in docs/platforms.md");
        }
    }
}

/// Each fault, the kind every platform must report for it, on every tool.
fn faults() -> Vec<(Fault, FailureKind)> {
    vec![
        (Fault::Unauthorized, FailureKind::AuthRevoked),
        (Fault::Forbidden, FailureKind::PermissionMissing),
        (Fault::RateLimited { retry_after: 3.0 }, FailureKind::RateLimited),
        (Fault::ServerError, FailureKind::UpstreamTransient),
    ]
}

#[tokio::test]
async fn every_tool_answers_in_shape_and_maps_faults_alike_and_never_shows_the_credential() {
    let captured = logs::capture();
    for entry in PLATFORMS {
        let fixture = fixtures::start(entry.platform).await;
        let canaries = fixture.canaries.clone();
        let credential = Secret::new(fixture.credential.clone());
        let mut shown = Vec::new();
        if let Some(why) = fixture.not_http() {
            eprintln!("{}: HTTP mock checks skipped ({why})", entry.platform);
            for tool in tools(entry) {
                let name = tool.definition().name.clone();
                let arguments = minimal_arguments(&tool.definition().input_schema);
                let failure = tool.call(&credential, arguments).await.expect_err(&name);
                assert!(
                    matches!(failure.kind, FailureKind::Forbidden | FailureKind::InvalidInput),
                    "{name}: a loopback server must be refused before anything is sent: {failure:?}"
                );
                shown.push(failure.message);
            }
            let logged = captured.text();
            for canary in &canaries {
                assert!(!logged.contains(canary.as_str()), "{}: the credential reached a log line", entry.platform);
                assert!(shown.iter().all(|text| !text.contains(canary.as_str())), "{}: the credential reached a result", entry.platform);
            }
            continue;
        }

        for tool in module(entry, fixture.origin(entry)).tools() {
            if !tool.definition().annotations.open_world {
                // Answered from the gateway's own records, not the platform: nothing upstream to
                // check here (the platform's own tests run it against a store).
                continue;
            }
            let definition = tool.definition().clone();
            let name = &definition.name;
            if definition.description.contains("Partner-only:") {
                // kit::partner_only without declared access: the restriction, and nothing sent.
                let before = fixture.request_count();
                let failure = tool.call(&credential, minimal_arguments(&definition.input_schema)).await.expect_err(name);
                assert_eq!(failure.kind, FailureKind::NotSupported, "{name}: {}", failure.message);
                assert_eq!(fixture.request_count(), before, "{name}: a partner-only tool called the platform");
                continue;
            }
            // A fixture may give a tool the arguments it needs beyond its schema's required ones.
            let arguments = fixtures::arguments(name).unwrap_or_else(|| minimal_arguments(&definition.input_schema));
            schema::validate(&definition.input_schema, &Value::Object(arguments.clone()))
                .unwrap_or_else(|why| panic!("{name}: the sample arguments are invalid: {why}"));

            let output = tool.call(&credential, arguments.clone()).await.unwrap_or_else(|f| panic!("{name} failed on its mock: {f:?}"));
            assert!(output.structured.is_object(), "{name}: the output must be an object");
            if let Some(output_schema) = &definition.output_schema {
                schema::validate(output_schema, &output.structured)
                    .unwrap_or_else(|why| panic!("{name}: the output does not match its schema: {why}\n{}", output.structured));
            }
            shown.push(output.structured.to_string());

            for (fault, kind) in faults() {
                // A fresh module each time: some platforms remember a rejected credential.
                let fresh = module(entry, fixture.origin(entry)).tools().into_iter().find(|t| t.definition().name == *name).unwrap();
                fixture.fail_always(fault.clone());
                let failure = fresh.call(&credential, arguments.clone()).await.expect_err(name);
                // A refused token may read as expired where the platform cannot tell the two apart
                // (TikTok's access_token_invalid): the gateway refreshes and re-runs once on either.
                let expired = kind == FailureKind::AuthRevoked && failure.kind == FailureKind::AuthExpired;
                assert!(failure.kind == kind || expired, "{name} on {fault:?}: {:?} {}", failure.kind, failure.message);
                if kind == FailureKind::RateLimited {
                    assert_eq!(failure.retry_after, Some(3), "{name}: the wait the platform asked for");
                }
                fixture.recover();
                shown.push(failure.message);
            }

            // The platform echoes the credential back, in JSON and in plain text.
            let echo = canaries.join(" ");
            let echoing = [
                Reply::json(
                    400,
                    json!({"ok": false, "error_code": 400, "description": format!("bad {echo}"), "message": format!("bad {echo}"), "code": 50035, "error": {"message": format!("bad {echo}")}}),
                ),
                Reply::raw(502, "text/plain", &format!("proxy error for {echo}")),
            ];
            for reply in echoing {
                let fresh = module(entry, fixture.origin(entry)).tools().into_iter().find(|t| t.definition().name == *name).unwrap();
                fixture.fail_always(Fault::Reply(reply));
                let failure = fresh.call(&credential, arguments.clone()).await.expect_err(name);
                fixture.recover();
                shown.push(failure.message);
            }
        }

        let logged = captured.text();
        for canary in &canaries {
            assert!(!logged.contains(canary.as_str()), "{}: the credential reached a log line", entry.platform);
            for text in &shown {
                assert!(!text.contains(canary.as_str()), "{}: the credential reached a result: {text}", entry.platform);
            }
        }
        assert!(logged.contains(entry.platform.as_str()), "{}: the capture saw the calls' log lines", entry.platform);
    }
}

/// Fails on any keyword outside [`SUPPORTED_KEYWORDS`], at any depth.
fn check_keywords(schema: &Value, at: &str) {
    let Some(object) = schema.as_object() else { panic!("{at}: a schema must be an object") };
    for (keyword, value) in object {
        assert!(SUPPORTED_KEYWORDS.contains(&keyword.as_str()), "{at}: `{keyword}` is not supported by the gateway's validator");
        match keyword.as_str() {
            "properties" => {
                for (property, schema) in value.as_object().expect("properties is an object") {
                    check_keywords(schema, &format!("{at}.{property}"));
                }
            }
            "items" => check_keywords(value, &format!("{at}[]")),
            "additionalProperties" if value.is_object() => check_keywords(value, &format!("{at}{{}}")),
            _ => {}
        }
    }
}

/// The smallest arguments the input schema accepts: each required property, sampled.
fn minimal_arguments(schema: &Value) -> Map<String, Value> {
    match sample(schema) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn sample(schema: &Value) -> Value {
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).next().unwrap_or("null"),
        _ => "null",
    };
    match kind {
        "string" => {
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(1).max(1);
            Value::String("1".repeat(usize::try_from(min).unwrap()))
        }
        "integer" | "number" => {
            let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            let max = schema.get("maximum").and_then(Value::as_i64).unwrap_or(i64::MAX);
            json!(1.clamp(min, max))
        }
        "boolean" => json!(false),
        "array" => {
            let count = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = schema.get("items").cloned().unwrap_or(json!({"type": "string"}));
            Value::Array((0..count).map(|_| sample(&item)).collect())
        }
        "object" => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let required = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut object = Map::new();
            for name in required.iter().filter_map(Value::as_str) {
                let property = properties.and_then(|p| p.get(name)).cloned().unwrap_or(json!({}));
                object.insert(name.to_owned(), sample(&property));
            }
            // Media tools (kit::media) take `media_url` or `media_data`, neither required by the
            // schema: the sample is a public https URL, which platforms that fetch it themselves accept.
            if properties.is_some_and(|p| p.contains_key("media_url")) && !object.contains_key("media_data") {
                object.insert("media_url".to_owned(), json!("https://media.example.com/sample.jpg"));
            }
            Value::Object(object)
        }
        _ => Value::Null,
    }
}
