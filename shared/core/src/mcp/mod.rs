//! The MCP protocol (JSON-RPC over Streamable HTTP), stateless: every request carries all it
//! needs, so any request can land on any instance. The HTTP edge decides status codes that come
//! before the body (405, 403, 401, 406, 413) and framing (JSON or one SSE event); this module
//! turns a body into a reply.

mod batch;
mod cursor;
mod modern;

pub use batch::MAX_BATCH_MESSAGES;
pub use modern::{MODERN_VERSIONS, RequestHeaders};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use crate::gateway::{CallContext, UnknownTool};
use crate::{Gateway, Platform, Principal, ToolDefinition};

/// The revisions that open with `initialize`, newest first. `initialize` echoes a supported
/// version and otherwise offers the newest (2026-07-28 has no `initialize`, so never that one).
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
pub const LATEST_VERSION: &str = SUPPORTED_VERSIONS[0];
/// What a request without an `MCP-Protocol-Version` header is taken to speak (spec: 2025-06-18 §Transports).
pub const VERSION_WITHOUT_HEADER: &str = "2025-03-26";
/// Batches exist only in this revision.
const BATCH_VERSION: &str = "2025-03-26";

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// Distinct sets of connected platforms whose `tools/list` pages are kept serialized.
const FILTERED_CACHE_ENTRIES: usize = 256;

/// `tools/list` result pages, serialized.
type Pages = Arc<Vec<Arc<str>>>;

/// What to send back: a status and, unless the status is 202, a serialized JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<String>,
}

impl Reply {
    fn accepted() -> Self {
        Self { status: 202, body: None }
    }

    fn bad_request(body: Value) -> Self {
        Self { status: 400, body: Some(body.to_string()) }
    }

    /// The body parsed back, for tests and diagnostics.
    pub fn json(&self) -> Option<Value> {
        self.body.as_deref().and_then(|b| serde_json::from_str(b).ok())
    }
}

pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub instructions: String,
}

pub struct McpServer {
    gateway: Arc<Gateway>,
    info: ServerInfo,
    /// Every `tools/list` result page, serialized once at start: the list never changes while
    /// the process runs, so a request only copies bytes. The admin key sees these.
    tool_pages: Pages,
    /// Every tool serialized, with its platform, for the per-customer lists.
    rendered: Vec<(Platform, Box<str>)>,
    /// A customer sees the tools of the platforms they connected: the pages per set of
    /// platforms, serialized on first use.
    filtered_pages: Mutex<HashMap<Vec<Platform>, Pages>>,
    page_size: usize,
}

impl McpServer {
    pub fn new(gateway: Arc<Gateway>, info: ServerInfo, page_size: usize) -> Self {
        let page_size = page_size.max(1);
        let rendered: Vec<(Platform, Box<str>)> =
            gateway.registry().tools().iter().map(|t| (t.definition().platform, render_tool(t.definition()))).collect();
        let tools: Vec<&str> = rendered.iter().map(|(_, tool)| &**tool).collect();
        let tool_pages = Arc::new(paginate(&tools, page_size));
        Self { gateway, info, tool_pages, rendered, filtered_pages: Mutex::new(HashMap::new()), page_size }
    }

    /// The pages a caller sees: every tool for the admin key, the tools of the connected
    /// platforms (one store query) for a customer.
    async fn pages_for(&self, context: &CallContext) -> Result<Pages, (i64, String)> {
        let Principal::Customer { id } = &context.principal else { return Ok(self.tool_pages.clone()) };
        let connected: Vec<Platform> = self
            .gateway
            .connected_platforms(id)
            .await
            .map_err(|e| {
                tracing::error!(customer = id.as_str(), error = %e, "tools/list: connections unavailable");
                (INTERNAL_ERROR, "The gateway could not read your connections. Try again shortly.".to_owned())
            })?
            .into_iter()
            .collect();
        if let Some(pages) = self.filtered_pages.lock().ok().and_then(|cache| cache.get(&connected).cloned()) {
            return Ok(pages);
        }
        let tools: Vec<&str> =
            self.rendered.iter().filter(|(platform, _)| connected.contains(platform)).map(|(_, tool)| &**tool).collect();
        let pages = Arc::new(paginate(&tools, self.page_size));
        if let Ok(mut cache) = self.filtered_pages.lock() {
            if cache.len() >= FILTERED_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(connected, pages.clone());
        }
        Ok(pages)
    }

    /// Shared: a tool call runs as a task of its own ([`Gateway::call_tool`]).
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// One POST body with only the `MCP-Protocol-Version` header known.
    pub async fn handle(&self, context: &CallContext, version_header: Option<&str>, body: &[u8]) -> Reply {
        self.handle_request(context, RequestHeaders::version_only(version_header), body).await
    }

    /// One POST body and the MCP headers that came with it. A request that declares 2026-07-28
    /// (in `_meta` or, unless it is `initialize`, in the header) is served statelessly by that
    /// revision's rules; anything else as before, so older clients see no change.
    pub async fn handle_request(&self, context: &CallContext, headers: RequestHeaders<'_>, body: &[u8]) -> Reply {
        let message: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Reply::bad_request(error(Value::Null, PARSE_ERROR, format!("Parse error: {e}"))),
        };
        let modern_header = headers.protocol_version.is_some_and(|v| MODERN_VERSIONS.contains(&v));
        if modern::declared_version(&message).is_some() || (modern_header && !is_initialize(&message)) {
            return self.handle_modern(context, &headers, message).await;
        }
        let version_header = headers.protocol_version;

        if let Some(version) = version_header
            && !SUPPORTED_VERSIONS.contains(&version)
            && !is_initialize(&message)
        {
            let id = message.get("id").filter(|id| valid_id(id)).cloned().unwrap_or(Value::Null);
            return Reply::bad_request(error(
                id,
                INVALID_REQUEST,
                format!(
                    "Unsupported MCP-Protocol-Version `{version}`; this server speaks {}",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            ));
        }

        match message {
            Value::Array(batch) => self.handle_batch(context, version_header, batch).await,
            single => self.handle_message(context, single, Era::Legacy).await.into_reply(),
        }
    }

    /// A 2026-07-28 request: headers checked against the body, then the declared version.
    async fn handle_modern(&self, context: &CallContext, headers: &RequestHeaders<'_>, message: Value) -> Reply {
        let Value::Object(object) = &message else {
            return Reply::bad_request(error(
                Value::Null,
                INVALID_REQUEST,
                "Invalid Request: MCP 2026-07-28 takes one JSON-RPC object per POST (no batches)",
            ));
        };
        let id = object.get("id").filter(|id| valid_id(id)).cloned().unwrap_or(Value::Null);
        if let Err(refusal) = modern::validate_headers(headers, object) {
            return Reply::bad_request(error(id, refusal.code, refusal.message));
        }
        let requested = modern::declared_version(&message).and_then(Value::as_str).unwrap_or_default();
        if SUPPORTED_VERSIONS.contains(&requested) {
            // An older revision named the new way: its rules apply; it needs no handshake here.
            return self.handle_message(context, message, Era::Legacy).await.into_reply();
        }
        if !MODERN_VERSIONS.contains(&requested) {
            let mut body = error(id, modern::UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version");
            body["error"]["data"] = json!({"supported": all_versions(), "requested": requested});
            return Reply::bad_request(body);
        }
        self.handle_message(context, message, Era::Modern).await.into_reply()
    }

    async fn handle_batch(&self, context: &CallContext, version_header: Option<&str>, batch: Vec<Value>) -> Reply {
        let version = version_header.unwrap_or(VERSION_WITHOUT_HEADER);
        if version != BATCH_VERSION {
            return Reply::bad_request(error(
                Value::Null,
                INVALID_REQUEST,
                format!("JSON-RPC batches are not part of MCP {version}; send one message per request"),
            ));
        }
        if batch.is_empty() {
            return Reply::bad_request(error(Value::Null, INVALID_REQUEST, "Invalid Request: empty batch"));
        }
        if batch.len() > MAX_BATCH_MESSAGES {
            return Reply::bad_request(error(
                Value::Null,
                INVALID_REQUEST,
                format!("Invalid Request: a batch holds at most {MAX_BATCH_MESSAGES} messages and this one has {}; send the rest in another request", batch.len()),
            ));
        }
        if batch.iter().any(is_initialize) {
            return Reply::bad_request(error(Value::Null, INVALID_REQUEST, "initialize must not be part of a batch"));
        }
        // Side by side, so that a batch of slow calls still ends within one call's deadline.
        let outcomes = batch::join_all(batch.into_iter().map(|message| self.handle_message(context, message, Era::Legacy)).collect()).await;
        let mut replies = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::NoReply => {}
                Outcome::Reply(body) | Outcome::Invalid(body) | Outcome::NotFound(body) => replies.push(body),
            }
        }
        if replies.is_empty() { Reply::accepted() } else { Reply { status: 200, body: Some(format!("[{}]", replies.join(","))) } }
    }

    async fn handle_message(&self, context: &CallContext, message: Value, era: Era) -> Outcome {
        let Value::Object(mut message) = message else {
            return Outcome::invalid(Value::Null, INVALID_REQUEST, "Invalid Request: a message must be a JSON object");
        };
        let id = message.remove("id");
        if let Some(id) = &id
            && !valid_id(id)
        {
            return Outcome::invalid(Value::Null, INVALID_REQUEST, "Invalid Request: `id` must be a string or an integer");
        }
        let reply_id = id.clone().unwrap_or(Value::Null);
        if message.get("jsonrpc") != Some(&json!("2.0")) {
            return Outcome::invalid(reply_id, INVALID_REQUEST, "Invalid Request: `jsonrpc` must be \"2.0\"");
        }
        let method = match message.remove("method") {
            Some(Value::String(method)) => method,
            Some(_) => return Outcome::invalid(reply_id, INVALID_REQUEST, "Invalid Request: `method` must be a string"),
            // A response to a server request; this server sends none, so there is nothing to match.
            None if id.is_some() && (message.contains_key("result") || message.contains_key("error")) => {
                return Outcome::NoReply;
            }
            None => return Outcome::invalid(reply_id, INVALID_REQUEST, "Invalid Request: `method` is missing"),
        };
        let Some(id) = id else {
            // Notifications (initialized, cancelled, anything else) need no answer.
            return Outcome::NoReply;
        };
        let params = match message.remove("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params,
            Some(_) => return Outcome::Reply(error(id, INVALID_PARAMS, "Invalid params: `params` must be an object").to_string()),
        };
        let dispatched = match era {
            Era::Legacy => self.dispatch(context, &method, params).await,
            Era::Modern => self.dispatch_modern(context, &method, params).await,
        };
        match dispatched {
            Ok(Rendered::Value(result)) => Outcome::Reply(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()),
            Ok(Rendered::Serialized(result)) => Outcome::Reply(format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#)),
            // 2026-07-28 §Protocol Version Header: an unimplemented method is a 404, so a client
            // can tell it from a 404 of a server without an MCP endpoint.
            Err((METHOD_NOT_FOUND, message)) if era == Era::Modern => {
                Outcome::NotFound(error(id, METHOD_NOT_FOUND, message).to_string())
            }
            Err((code, message)) => Outcome::Reply(error(id, code, message).to_string()),
        }
    }

    /// 2026-07-28: `server/discover` replaces `initialize`; `ping` is gone; every result says
    /// `resultType` and names the server in `_meta`; lists carry cache hints.
    async fn dispatch_modern(&self, context: &CallContext, method: &str, params: Map<String, Value>) -> Result<Rendered, (i64, String)> {
        if !matches!(method, "server/discover" | "tools/list" | "tools/call") {
            return Err((METHOD_NOT_FOUND, format!("Method not found: {method} (not part of MCP 2026-07-28 here)")));
        }
        modern::check_client_capabilities(&params).map_err(|message| (INVALID_PARAMS, message))?;
        let server_info = json!({ modern::SERVER_INFO_KEY: {"name": self.info.name, "version": self.info.version} });
        match method {
            "server/discover" => Ok(Rendered::Value(json!({
                "resultType": "complete",
                "supportedVersions": all_versions(),
                "capabilities": {"tools": {"listChanged": false}},
                "instructions": self.info.instructions,
                // The same for every caller and changed only by a deployment.
                "ttlMs": modern::DISCOVER_TTL_MS,
                "cacheScope": "public",
                "_meta": server_info,
            }))),
            "tools/list" => {
                let pages = self.pages_for(context).await?;
                let page = self.list_tools(&pages, &params)?;
                // Pages are serialized once; the modern fields go in front of the page's own.
                let body = page.strip_prefix('{').unwrap_or(&page);
                Ok(Rendered::Serialized(Arc::from(format!(
                    r#"{{"resultType":"complete","ttlMs":{},"cacheScope":"private","_meta":{server_info},{body}"#,
                    modern::TOOLS_LIST_TTL_MS
                ))))
            }
            _ => match self.call_tool(context, params).await? {
                CallResult::Succeeded(structured) => Ok(Rendered::Serialized(Arc::from(succeeded_call(
                    &structured,
                    &format!(r#""resultType":"complete","_meta":{server_info},"#),
                )))),
                CallResult::Failed(mut result) => {
                    result["resultType"] = json!("complete");
                    match result.get_mut("_meta").and_then(Value::as_object_mut) {
                        Some(meta) => {
                            meta.insert(modern::SERVER_INFO_KEY.to_owned(), server_info[modern::SERVER_INFO_KEY].clone());
                        }
                        None => result["_meta"] = server_info,
                    }
                    Ok(Rendered::Value(result))
                }
            },
        }
    }

    async fn dispatch(&self, context: &CallContext, method: &str, params: Map<String, Value>) -> Result<Rendered, (i64, String)> {
        match method {
            "initialize" => Ok(Rendered::Value(self.initialize(&params))),
            "ping" => Ok(Rendered::Value(json!({}))),
            "tools/list" => {
                let pages = self.pages_for(context).await?;
                self.list_tools(&pages, &params).map(Rendered::Serialized)
            }
            "tools/call" => self.call_tool(context, params).await.map(|result| match result {
                CallResult::Succeeded(structured) => Rendered::Serialized(Arc::from(succeeded_call(&structured, ""))),
                CallResult::Failed(result) => Rendered::Value(result),
            }),
            other => Err((METHOD_NOT_FOUND, format!("Method not found: {other}"))),
        }
    }

    fn initialize(&self, params: &Map<String, Value>) -> Value {
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let version = requested.filter(|v| SUPPORTED_VERSIONS.contains(v)).unwrap_or(LATEST_VERSION);
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": self.info.name, "version": self.info.version},
            "instructions": self.info.instructions,
        })
    }

    fn list_tools(&self, pages: &[Arc<str>], params: &Map<String, Value>) -> Result<Arc<str>, (i64, String)> {
        let page = match params.get("cursor") {
            None | Some(Value::Null) => 0,
            // Only cursors this server issued: offsets at page boundaries past the first page.
            Some(Value::String(c)) => cursor::decode(c)
                .filter(|&offset| offset > 0 && offset.is_multiple_of(self.page_size))
                .map(|offset| offset / self.page_size)
                .filter(|&page| page < pages.len())
                .ok_or((INVALID_PARAMS, "Invalid params: unknown cursor".to_owned()))?,
            Some(_) => return Err((INVALID_PARAMS, "Invalid params: `cursor` must be a string".to_owned())),
        };
        pages.get(page).cloned().ok_or((INVALID_PARAMS, "Invalid params: unknown cursor".to_owned()))
    }

    async fn call_tool(&self, context: &CallContext, mut params: Map<String, Value>) -> Result<CallResult, (i64, String)> {
        let name = match params.remove("name") {
            Some(Value::String(name)) => name,
            _ => return Err((INVALID_PARAMS, "Invalid params: `name` (a string) is required".to_owned())),
        };
        let arguments = match params.remove("arguments") {
            None | Some(Value::Null) => None,
            Some(args @ Value::Object(_)) => Some(args),
            Some(_) => return Err((INVALID_PARAMS, "Invalid params: `arguments` must be an object".to_owned())),
        };
        match self.gateway.call_tool(context, &name, arguments).await {
            Err(UnknownTool(name)) => Err((INVALID_PARAMS, format!("Unknown tool: {name}"))),
            Ok(Ok(output)) => Ok(CallResult::Succeeded(output.structured)),
            Ok(Err(failure)) => {
                // The kind lets a program react (wait, reconnect) without parsing the message.
                let mut error = json!({ "kind": failure.kind.as_str() });
                if let Some(seconds) = failure.retry_after {
                    error["retry_after"] = json!(seconds);
                }
                Ok(CallResult::Failed(json!({
                    "content": [{"type": "text", "text": failure.message}],
                    "isError": true,
                    "_meta": { "squaremcp/error": error },
                })))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Era {
    /// 2025-03-26 to 2025-11-25: `initialize`, `ping`, results as they were.
    Legacy,
    /// 2026-07-28: stateless, per-request `_meta`.
    Modern,
}

enum Outcome {
    NoReply,
    Reply(String),
    /// Not a valid JSON-RPC message: alone in a request, it earns a 400.
    Invalid(String),
    /// A 2026-07-28 request for a method this server lacks: 404.
    NotFound(String),
}

impl Outcome {
    fn into_reply(self) -> Reply {
        match self {
            Outcome::NoReply => Reply::accepted(),
            Outcome::Reply(body) => Reply { status: 200, body: Some(body) },
            Outcome::Invalid(body) => Reply { status: 400, body: Some(body) },
            Outcome::NotFound(body) => Reply { status: 404, body: Some(body) },
        }
    }

    fn invalid(id: Value, code: i64, message: &str) -> Self {
        Self::Invalid(error(id, code, message).to_string())
    }
}

enum Rendered {
    Value(Value),
    /// A result serialized ahead of time.
    Serialized(Arc<str>),
}

/// A `tools/call` that reached its end: the tool's output, or the failure as the model sees it.
enum CallResult {
    Succeeded(Value),
    Failed(Value),
}

/// A successful call's result: the output as text (for clients that read `content`) and as
/// `structuredContent`, serialized once for both, after `leading` fields (`"name":value,` each).
fn succeeded_call(structured: &Value, leading: &str) -> String {
    let json = structured.to_string();
    let quoted = serde_json::to_string(json.as_str()).unwrap_or_default();
    format!(r#"{{{leading}"content":[{{"type":"text","text":{quoted}}}],"structuredContent":{json},"isError":false}}"#)
}

/// `tools/list` result pages of `page_size` tools, each naming the next; at least one page.
/// The pages of serialized tools, each `{"nextCursor":…,"tools":[…]}` (keys in the order
/// `serde_json` writes them), joined as text: building `Value` trees of every schema only to
/// print them was most of a cold start's allocations.
fn paginate(tools: &[&str], page_size: usize) -> Vec<Arc<str>> {
    let mut pages = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + page_size).min(tools.len());
        let chunk = &tools[start..end];
        let mut page = String::with_capacity(chunk.iter().map(|t| t.len() + 1).sum::<usize>() + 48);
        page.push('{');
        if end < tools.len() {
            page.push_str(r#""nextCursor":"#);
            page.push_str(&Value::from(cursor::encode(end)).to_string());
            page.push(',');
        }
        page.push_str(r#""tools":["#);
        for (i, tool) in chunk.iter().enumerate() {
            if i > 0 {
                page.push(',');
            }
            page.push_str(tool);
        }
        page.push_str("]}");
        pages.push(Arc::from(page));
        if end >= tools.len() {
            break;
        }
        start = end;
    }
    pages
}

/// A tool as `tools/list` shows it, serialized straight from its definition.
fn render_tool(def: &ToolDefinition) -> Box<str> {
    // Fields in alphabetical order, as the `Value` maps this replaced printed them.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Rendered<'a> {
        annotations: RenderedAnnotations<'a>,
        description: &'a str,
        input_schema: &'a Value,
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        output_schema: Option<&'a Value>,
        title: &'a str,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct RenderedAnnotations<'a> {
        destructive_hint: bool,
        idempotent_hint: bool,
        open_world_hint: bool,
        read_only_hint: bool,
        title: &'a str,
    }
    let rendered = Rendered {
        annotations: RenderedAnnotations {
            destructive_hint: def.annotations.destructive,
            idempotent_hint: def.annotations.idempotent,
            open_world_hint: def.annotations.open_world,
            read_only_hint: def.annotations.read_only,
            title: &def.title,
        },
        description: &def.description,
        input_schema: &def.input_schema,
        name: &def.name,
        output_schema: def.output_schema.as_ref(),
        title: &def.title,
    };
    // Serializing borrowed strings, bools and `Value`s cannot fail.
    serde_json::to_string(&rendered).unwrap_or_default().into_boxed_str()
}

fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// Every revision served, newest first: what `server/discover` and a version refusal list.
fn all_versions() -> Vec<&'static str> {
    MODERN_VERSIONS.iter().chain(SUPPORTED_VERSIONS.iter()).copied().collect()
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

fn is_initialize(message: &Value) -> bool {
    message.get("method").and_then(Value::as_str) == Some("initialize")
}

#[cfg(test)]
mod tests;
