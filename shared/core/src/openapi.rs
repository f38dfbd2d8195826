//! The tools as an OpenAPI 3.1 document, for clients without MCP (function-calling APIs,
//! scripts): one `POST /tools/{name}` operation per tool, with the tool's input schema as the
//! request body, its output schema as the answer, and its MCP annotations as an extension.

use serde_json::{Map, Value, json};

use crate::ToolDefinition;
use crate::tool::FailureKind;

/// Every failure kind a `POST /tools/{name}` answer may carry, for the error schema's `enum`.
const FAILURE_KINDS: [FailureKind; 12] = [
    FailureKind::InvalidInput,
    FailureKind::NotConfigured,
    FailureKind::AuthExpired,
    FailureKind::AuthRevoked,
    FailureKind::PermissionMissing,
    FailureKind::NotFound,
    FailureKind::RateLimited,
    FailureKind::QuotaExhausted,
    FailureKind::UpstreamTransient,
    FailureKind::Upstream,
    FailureKind::NotSupported,
    FailureKind::Forbidden,
];

/// The HTTP status a tool failure is answered with on the REST route.
pub const fn status_for(kind: FailureKind) -> u16 {
    match kind {
        FailureKind::InvalidInput => 400,
        FailureKind::Forbidden | FailureKind::PermissionMissing => 403,
        FailureKind::NotFound => 404,
        // The customer's stored credential, not the caller's request, is what must change.
        FailureKind::NotConfigured | FailureKind::AuthExpired | FailureKind::AuthRevoked => 424,
        FailureKind::RateLimited | FailureKind::QuotaExhausted => 429,
        FailureKind::NotSupported => 501,
        FailureKind::Upstream => 502,
        FailureKind::UpstreamTransient => 503,
    }
}

/// The document for `tools`, served at `server_url` (the public URL).
pub fn document<'a>(tools: impl IntoIterator<Item = &'a ToolDefinition>, server_url: &str) -> Value {
    let mut paths = Map::new();
    for tool in tools {
        paths.insert(format!("/tools/{}", tool.name), json!({ "post": operation(tool) }));
    }
    let kinds: Vec<&str> = FAILURE_KINDS.iter().map(|k| k.as_str()).collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "SquareMCP tools",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every tool of the gateway as a plain HTTP operation, with the same authentication, \
                            usage limits and call log as MCP's tools/call. The body is the tool's arguments; \
                            the answer is its structured result.",
        },
        "servers": [{ "url": server_url }],
        "security": [{ "apiKey": [] }, { "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "x-api-key", "description": "A SquareMCP API key (sqm_…)." },
                "bearer": { "type": "http", "scheme": "bearer", "description": "An OAuth access token, or an API key as a bearer token." },
            },
            "schemas": {
                "ToolError": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["kind", "message"],
                            "properties": {
                                "kind": { "type": "string", "enum": kinds },
                                "message": { "type": "string", "description": "What happened and what to do about it." },
                                "retry_after": { "type": "integer", "minimum": 0, "description": "Seconds to wait before retrying." },
                            },
                        },
                    },
                },
            },
            "responses": {
                "ToolError": {
                    "description": "The tool failed; `kind` says how, `message` what to do.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ToolError" } } },
                },
            },
        },
    })
}

fn operation(tool: &ToolDefinition) -> Value {
    let output = tool.output_schema.clone().unwrap_or_else(|| json!({ "type": "object" }));
    let error = json!({ "$ref": "#/components/responses/ToolError" });
    let mut responses = Map::new();
    responses.insert(
        "200".to_owned(),
        json!({ "description": "The tool's result.", "content": { "application/json": { "schema": output } } }),
    );
    for status in ["400", "401", "403", "404", "424", "429", "501", "502", "503"] {
        responses.insert(status.to_owned(), error.clone());
    }
    let hints = tool.annotations;
    json!({
        "operationId": tool.name,
        "summary": tool.title,
        "description": tool.description,
        "tags": [tool.platform.as_str()],
        "requestBody": { "required": true, "content": { "application/json": { "schema": tool.input_schema } } },
        "responses": responses,
        "x-mcp-annotations": {
            "readOnlyHint": hints.read_only,
            "destructiveHint": hints.destructive,
            "idempotentHint": hints.idempotent,
            "openWorldHint": hints.open_world,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::Platform;

    #[test]
    fn each_tool_is_one_post_operation_with_its_schemas_and_annotations() {
        let tool = ToolDefinition::new(Platform::Telegram, "get_me", "Telegram: get the bot", "Returns the bot.", Map::new(), &[])
            .read_only()
            .with_output_schema(json!({"type": "object", "properties": {"id": {"type": "integer"}}}));
        let document = document([&tool], "https://mcp.example.com");
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["servers"][0]["url"], "https://mcp.example.com");
        let operation = &document["paths"]["/tools/telegram_get_me"]["post"];
        assert_eq!(operation["operationId"], "telegram_get_me");
        assert_eq!(operation["requestBody"]["content"]["application/json"]["schema"], tool.input_schema);
        assert_eq!(operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["id"]["type"], "integer");
        assert_eq!(operation["x-mcp-annotations"]["readOnlyHint"], true);
        assert_eq!(operation["responses"]["429"]["$ref"], "#/components/responses/ToolError");
    }

    #[test]
    fn every_failure_kind_has_a_documented_status() {
        let documented = ["400", "401", "403", "404", "424", "429", "502", "503", "501"];
        for kind in FAILURE_KINDS {
            assert!(documented.contains(&status_for(kind).to_string().as_str()), "{kind:?}");
        }
    }
}
