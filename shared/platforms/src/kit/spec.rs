//! A tool declared as data: one list of arguments from which the MCP input schema, the required
//! list, the call log's allow-list and the upstream request are all derived, so they cannot
//! drift apart.

use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Annotations, ToolDefinition, ToolFailure};
use squaremcp_core::Platform;

/// An output schema's `{"type": "object", "required": …, "properties": …}`, built by moving
/// `properties` in (`json!` would copy the tree through the serializer, for every tool at every
/// start).
pub fn object_schema(required: &[&str], properties: Value) -> Value {
    let mut schema = Map::new();
    schema.insert("type".to_owned(), Value::from("object"));
    schema.insert("required".to_owned(), required.iter().map(|name| Value::from(*name)).collect());
    schema.insert("properties".to_owned(), properties);
    Value::Object(schema)
}

/// Where an argument goes in the upstream request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Fills `{name}` in the endpoint's path (percent-encoded).
    Path,
    Query,
    /// A key of the JSON body.
    Body,
    /// A request header with this name.
    Header(&'static str),
}

/// Turns an argument's value into the value the platform wants (nested, renamed, checked).
/// `Err` is reported to the caller as it is, so it should name the argument.
pub type Convert = fn(&Value) -> Result<Value, ToolFailure>;

/// One argument of a tool.
#[derive(Clone, Debug)]
pub struct Arg {
    pub name: &'static str,
    /// Its JSON Schema (a `description` included).
    pub schema: Value,
    pub required: bool,
    /// May the call log keep its value? Only for ids, limits and flags: never message content
    /// or anything personal.
    pub logged: bool,
    pub place: Place,
    /// The upstream name, when it differs from `name`.
    pub upstream: &'static str,
    pub convert: Option<Convert>,
}

impl Arg {
    /// An optional body argument sent under its own name and kept out of the call log.
    pub fn new(name: &'static str, schema: Value) -> Self {
        Self { name, schema, required: false, logged: false, place: Place::Body, upstream: name, convert: None }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Lets the call log keep the value (ids, limits, flags).
    pub fn logged(mut self) -> Self {
        self.logged = true;
        self
    }

    pub fn in_path(mut self) -> Self {
        self.place = Place::Path;
        self
    }

    pub fn in_query(mut self) -> Self {
        self.place = Place::Query;
        self
    }

    pub fn in_header(mut self, header: &'static str) -> Self {
        self.place = Place::Header(header);
        self
    }

    /// Sent as `upstream` instead of its own name.
    pub fn renamed(mut self, upstream: &'static str) -> Self {
        self.upstream = upstream;
        self
    }

    pub fn converted(mut self, convert: Convert) -> Self {
        self.convert = Some(convert);
        self
    }
}

/// What a tool is: its name, words for the model, arguments and honest annotations.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    /// Without the platform prefix, e.g. `send_message`.
    pub name: &'static str,
    pub title: &'static str,
    pub description: String,
    pub args: Vec<Arg>,
    pub annotations: Annotations,
    /// When the answer has a stable shape: results then carry `structuredContent` conforming to it.
    pub output_schema: Option<Value>,
}

impl ToolSpec {
    pub fn new(name: &'static str, title: &'static str, description: impl Into<String>, annotations: Annotations) -> Self {
        Self { name, title, description: description.into(), args: Vec::new(), annotations, output_schema: None }
    }

    pub fn arg(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self
    }

    pub fn output(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// The MCP definition: `inputSchema`, `required` and the logged arguments, all from [`Self::args`].
    /// The argument and output schemas move into it: afterwards the spec keeps what
    /// [`Self::request`] needs (names, places, conversions), not the schemas, whose copies were
    /// a good part of every start's allocations.
    pub fn take_definition(&mut self, platform: Platform) -> ToolDefinition {
        let properties: Map<String, Value> =
            self.args.iter_mut().map(|a| (a.name.to_owned(), std::mem::take(&mut a.schema))).collect();
        let required: Vec<&str> = self.args.iter().filter(|a| a.required).map(|a| a.name).collect();
        let logged: Vec<&'static str> = self.args.iter().filter(|a| a.logged).map(|a| a.name).collect();
        let mut definition = ToolDefinition::new(platform, self.name, self.title, &self.description, properties, &required)
            .log_arguments(&logged)
            .with_annotations(self.annotations);
        definition.output_schema = self.output_schema.take();
        definition
    }

    /// Places the given arguments into a request for `path` (a template like
    /// `/channels/{channel_id}/messages`). Absent optional arguments are not sent at all.
    pub fn request(&self, path: &str, arguments: &Map<String, Value>) -> Result<UpstreamRequest, ToolFailure> {
        self.request_with(path, &[], arguments)
    }

    /// Like [`Self::request`], with some `{name}` placeholders filled from `path_values` first
    /// (values the platform supplies from its credential or configuration, not the caller).
    pub fn request_with(
        &self,
        path: &str,
        path_values: &[(&'static str, String)],
        arguments: &Map<String, Value>,
    ) -> Result<UpstreamRequest, ToolFailure> {
        let mut path = path.to_owned();
        for (name, value) in path_values {
            path = path.replace(&format!("{{{name}}}"), &percent_encode(value));
        }
        let mut request = UpstreamRequest { path, ..UpstreamRequest::default() };
        for arg in &self.args {
            let Some(given) = arguments.get(arg.name) else { continue };
            let value = match arg.convert {
                Some(convert) => convert(given)?,
                None => normalized(given),
            };
            match arg.place {
                Place::Body => insert_nested(&mut request.body, arg.upstream, value),
                Place::Query => request.query.push((arg.upstream, plain_text(&value))),
                Place::Header(header) => request.headers.push((header, plain_text(&value))),
                Place::Path => {
                    let placeholder = format!("{{{}}}", arg.upstream);
                    request.path = request.path.replace(&placeholder, &percent_encode(&plain_text(&value)));
                }
            }
        }
        if let Some(start) = request.path.find('{') {
            let rest = &request.path[start + 1..];
            let name = rest.split('}').next().unwrap_or(rest);
            return Err(ToolFailure::invalid_arguments(format!("`{name}` is required")));
        }
        Ok(request)
    }
}

/// Inserts `value` at `key`; a dotted key (`text.body`) nests it in objects, created as needed
/// and shared by arguments with the same prefix (`text.preview_url`).
fn insert_nested(body: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            body.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = body.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !inner.is_object() {
                *inner = Value::Object(Map::new());
            }
            if let Value::Object(inner) = inner {
                insert_nested(inner, rest, value);
            }
        }
    }
}

/// A request before the platform's credential and origin are added.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpstreamRequest {
    /// Filled in: no `{…}` left.
    pub path: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Map<String, Value>,
    pub headers: Vec<(&'static str, String)>,
}

/// The schema check accepts `5.0` as an integer; APIs with strict integer parsing may not, so
/// whole floats are sent as integers.
pub fn normalized(value: &Value) -> Value {
    const EXACT_F64_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53
    match value.as_f64() {
        Some(x) if value.is_f64() && x.fract() == 0.0 && x.abs() <= EXACT_F64_INTEGER => Value::from(x as i64),
        _ => value.clone(),
    }
}

/// A value as it goes into a path, query or header: strings bare, everything else as JSON.
fn plain_text(value: &Value) -> String {
    match normalized(value) {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Keeps only RFC 3986's unreserved characters, so that an id can never add a path segment.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

// Schema helpers shared by every platform's table.

/// `{"type": "string", "description": …}`.
pub fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// `{"type": "integer", "description": …}`.
pub fn integer(description: &str) -> Value {
    json!({ "type": "integer", "description": description })
}

/// An integer between `minimum` and `maximum`.
pub fn integer_between(minimum: i64, maximum: i64, description: &str) -> Value {
    json!({ "type": "integer", "minimum": minimum, "maximum": maximum, "description": description })
}

/// `{"type": "boolean", "description": …}`.
pub fn flag(description: &str) -> Value {
    json!({ "type": "boolean", "description": description })
}

/// A string of 1 to `max` characters.
pub fn text(max: u64, description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max, "description": description })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_schemas_are_what_json_would_build() {
        let properties = json!({"id": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}});
        assert_eq!(
            object_schema(&["id"], properties.clone()),
            json!({"type": "object", "required": ["id"], "properties": properties})
        );
    }

    fn arguments(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn spec() -> ToolSpec {
        ToolSpec::new("send", "Test: send", "Sends.", Annotations::WRITE)
            .arg(Arg::new("channel_id", string("Channel.")).required().logged().in_path())
            .arg(Arg::new("content", text(10, "Text.")).required())
            .arg(Arg::new("limit", integer("Limit.")).logged().in_query())
            .arg(Arg::new("reply_to", string("Reply.")).logged().renamed("message_reference").converted(|id| {
                Ok(json!({ "message_id": id }))
            }))
            .arg(Arg::new("reason", string("Why.")).in_header("X-Audit-Log-Reason"))
    }

    #[test]
    fn the_definition_derives_schema_required_and_log_list_from_the_arguments() {
        let definition = spec().take_definition(Platform::Discord);
        assert_eq!(definition.name, "discord_send");
        assert_eq!(definition.input_schema["required"], json!(["channel_id", "content"]));
        let properties = definition.input_schema["properties"].as_object().expect("properties");
        let names: Vec<&str> = properties.keys().map(String::as_str).collect();
        assert_eq!(names, ["account", "channel_id", "content", "limit", "reason", "reply_to"]);
        assert_eq!(definition.logged_arguments, ["account", "channel_id", "limit", "reply_to"]);
        assert_eq!(definition.annotations, Annotations::WRITE);
    }

    #[test]
    fn the_request_places_each_argument_and_skips_absent_ones() {
        let given = arguments(json!({"channel_id": "12/../34", "content": "hi", "limit": 5.0, "reply_to": "9", "reason": "x y"}));
        let request = spec().request("/channels/{channel_id}/messages", &given).expect("a request");
        assert_eq!(request.path, "/channels/12%2F..%2F34/messages", "a path argument cannot add segments");
        assert_eq!(request.query, [("limit", "5".to_owned())], "whole floats go as integers");
        assert_eq!(Value::Object(request.body), json!({"content": "hi", "message_reference": {"message_id": "9"}}));
        assert_eq!(request.headers, [("X-Audit-Log-Reason", "x y".to_owned())]);

        let minimal = spec().request("/channels/{channel_id}/messages", &arguments(json!({"channel_id": 7, "content": "a"})));
        let minimal = minimal.expect("a request");
        assert_eq!(minimal.path, "/channels/7/messages");
        assert!(minimal.query.is_empty() && minimal.headers.is_empty());
    }

    #[test]
    fn a_missing_path_argument_is_an_invalid_input_naming_it() {
        let failure = spec().request("/channels/{channel_id}/messages", &arguments(json!({"content": "a"}))).expect_err("no id");
        assert_eq!(failure.kind, squaremcp_core::FailureKind::InvalidInput);
        assert_eq!(failure.message, "`channel_id` is required");
    }

    #[test]
    fn dotted_names_nest_body_fields_and_share_their_parent() {
        let spec = ToolSpec::new("t", "T", "T.", Annotations::WRITE)
            .arg(Arg::new("text", string("Text.")).renamed("text.body"))
            .arg(Arg::new("preview", flag("Preview.")).renamed("text.preview_url"))
            .arg(Arg::new("language", string("Language.")).renamed("template.language.code"));
        let given = arguments(json!({"text": "hi", "preview": true, "language": "en_US"}));
        let request = spec.request("/", &given).expect("a request");
        assert_eq!(
            Value::Object(request.body),
            json!({"text": {"body": "hi", "preview_url": true}, "template": {"language": {"code": "en_US"}}})
        );
    }

    #[test]
    fn path_values_fill_placeholders_before_the_arguments_and_are_encoded() {
        let spec = ToolSpec::new("t", "T", "T.", Annotations::READ).arg(Arg::new("id", string("Id.")).required().in_path());
        let values = [("version", "v26.0".to_owned()), ("owner", "12/34".to_owned())];
        let request = spec.request_with("/{version}/{owner}/items/{id}", &values, &arguments(json!({"id": "7"}))).expect("a request");
        assert_eq!(request.path, "/v26.0/12%2F34/items/7", "a supplied value cannot add segments either");
        let missing = spec.request_with("/{version}/{owner}", &values[..1], &arguments(json!({"id": "7"}))).expect_err("no owner");
        assert_eq!(missing.message, "`owner` is required");
    }

    #[test]
    fn a_conversion_can_refuse_a_value() {
        let spec = ToolSpec::new("t", "T", "T.", Annotations::READ).arg(
            Arg::new("url", string("URL.")).converted(|_| Err(ToolFailure::invalid_arguments("`url` must be https"))),
        );
        let failure = spec.request("/", &arguments(json!({"url": "http://x"}))).expect_err("refused");
        assert_eq!(failure.message, "`url` must be https");
    }
}
