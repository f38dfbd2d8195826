//! The four WhatsApp tools: three rows of data run by the kit's generic HTTP handler, and
//! `get_message_status`, which answers from the status store because the Cloud API has no
//! endpoint for it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::routing;
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use super::dialect::{self, WhatsappDialect};
use super::status;
use crate::kit::spec::{flag, integer_between, string, text};
use crate::kit::{Arg, HttpApi, HttpTool, HttpToolSpec, Output, PlatformContext, Records, ToolSpec};

/// Every WhatsApp tool, sharing one client.
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let dialect = WhatsappDialect { version: context.graph_api_version.clone() };
    let api = Arc::new(HttpApi::new(context.http.clone(), context.origin.clone(), dialect));
    let [send_message, send_template, list_templates] = rows();
    let tool = |row| -> Arc<dyn Tool> { Arc::new(HttpTool::new(row, api.clone())) };
    let status = Arc::new(MessageStatus::new(api.clone(), context.records.clone()));
    vec![tool(send_message), tool(send_template), tool(list_templates), status]
}

/// Read-only and answered by the gateway itself: it reaches nothing outside.
const LOCAL_READ: Annotations = Annotations { open_world: false, ..Annotations::READ };

/// In the order `tools/list` shows them.
fn rows() -> [HttpToolSpec; 3] {
    let to = || {
        Arg::new("to", json!({ "type": "string", "minLength": 1, "maxLength": 64, "description":
            "The recipient: a phone number in international format with the country code, digits only (e.g. 15551234567), \
             or the WhatsApp user id from an inbound message." }))
        .required()
    };
    [
        HttpToolSpec::post(
            ToolSpec::new("send_message", "WhatsApp: send a text message", "Sends a text message from the connected business \
                number and returns WhatsApp's answer with `message_id`, for whatsapp_get_message_status. Free-form text is \
                accepted only within 24 hours of the person's last message to the business; outside that window send an \
                approved template with whatsapp_send_template.", Annotations::WRITE)
            .arg(to())
            .arg(Arg::new("text", text(4096, "The message, 1 to 4096 characters; WhatsApp formatting (*bold*, _italic_) works."))
                .required().renamed("text.body"))
            .arg(Arg::new("preview_url", flag("True to show a preview of the first link in `text`.")).logged()
                .renamed("text.preview_url"))
            .arg(Arg::new("reply_to", wamid("A message in this conversation to reply to (quoted above the reply)."))
                .logged().renamed("context.message_id"))
            .output(sent()),
            "/{version}/{phone_number_id}/messages",
        )
        .operation(dialect::SEND_MESSAGE)
        .fixed("messaging_product", json!("whatsapp"))
        .fixed("recipient_type", json!("individual"))
        .fixed("type", json!("text"))
        .output(Output::Custom(with_message_id)),
        HttpToolSpec::post(
            ToolSpec::new("send_template", "WhatsApp: send a template message", "Sends an approved message template (the only \
                kind of message WhatsApp accepts more than 24 hours after the person last wrote) and returns WhatsApp's \
                answer with `message_id`. whatsapp_list_templates shows each template's name, language and the parameters \
                its components expect.", Annotations::WRITE)
            .arg(to())
            .arg(Arg::new("name", text(512, "The template's name, as whatsapp_list_templates shows it.")).logged().required()
                .renamed("template.name"))
            .arg(Arg::new("language", json!({ "type": "string", "minLength": 2, "maxLength": 15, "description":
                    "The template's language code, e.g. en_US or de." })).logged().required().renamed("template.language.code"))
            .arg(Arg::new("components", json!({ "type": "array", "maxItems": 20, "items": { "type": "object" }, "description":
                    "Values for the template's variables, as WhatsApp expects them: e.g. [{\"type\": \"body\", \"parameters\": \
                     [{\"type\": \"text\", \"text\": \"Ada\"}]}]; for named parameters add \"parameter_name\". Leave out for a \
                     template without variables." })).renamed("template.components"))
            .output(sent()),
            "/{version}/{phone_number_id}/messages",
        )
        .operation(dialect::SEND_TEMPLATE)
        .fixed("messaging_product", json!("whatsapp"))
        .fixed("recipient_type", json!("individual"))
        .fixed("type", json!("template"))
        .output(Output::Custom(with_message_id)),
        HttpToolSpec::get(
            ToolSpec::new("list_templates", "WhatsApp: list message templates", "Lists the business account's message \
                templates as {\"templates\": [...], \"next\": cursor}: name, language, status (only APPROVED ones can be \
                sent), category and components with their variables. For the next page call again with `after` set to \
                `next`.", Annotations::READ)
            .arg(Arg::new("status", json!({ "type": "string", "enum": ["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"],
                "description": "Only templates with this review status." })).logged().in_query())
            .arg(Arg::new("name", string("Only templates whose name contains this.")).logged().in_query())
            .arg(Arg::new("language", string("Only templates in this language code, e.g. en_US.")).logged().in_query())
            .arg(Arg::new("limit", integer_between(1, 100, "At most this many templates (1 to 100, default 100).")).logged().in_query())
            .arg(Arg::new("after", string("The `next` cursor of the previous page.")).logged().in_query())
            .output(json!({ "type": "object", "required": ["templates"], "properties": {
                "templates": { "type": "array", "items": template() },
                "next": { "type": ["string", "null"] } } })),
            "/{version}/{waba_id}/message_templates",
        )
        .operation(dialect::GET_TEMPLATES)
        .fixed_query("fields", "id,name,status,category,language,components,parameter_format")
        .fixed_query("limit", "100")
        .output(Output::Custom(templates_page)),
    ]
}

/// Adds `message_id` (the first of `messages`), which the model passes to
/// whatsapp_get_message_status.
fn with_message_id(mut result: Value) -> Result<Value, ToolFailure> {
    let id = result.pointer("/messages/0/id").and_then(Value::as_str).map(str::to_owned);
    let (Some(object), Some(id)) = (result.as_object_mut(), id) else {
        return Err(ToolFailure::new(FailureKind::Upstream, "WhatsApp accepted the message but answered without its id."));
    };
    object.insert("message_id".to_owned(), json!(id));
    Ok(result)
}

/// `{"data": [...], "paging": {"cursors": {"after"}, "next"}}` → `{"templates", "next"}`; `next`
/// is the cursor only when there is a next page.
fn templates_page(result: Value) -> Result<Value, ToolFailure> {
    let Some(data) = result.get("data").and_then(Value::as_array) else {
        return Err(ToolFailure::new(FailureKind::Upstream, format!("WhatsApp answered {} without `data`.", dialect::GET_TEMPLATES)));
    };
    let more = result.pointer("/paging/next").is_some_and(|next| next.is_string());
    let next = result.pointer("/paging/cursors/after").filter(|_| more).cloned().unwrap_or(Value::Null);
    Ok(json!({ "templates": data, "next": next }))
}

/// `whatsapp_get_message_status`: the furthest status the webhook received for one of the
/// caller's messages. The caller is the customer who connected the credential's phone number
/// (the routing index holds one customer per number), so a customer sees only statuses routed
/// to them; another customer's message id reads as "nothing yet".
struct MessageStatus {
    definition: ToolDefinition,
    api: Arc<HttpApi<WhatsappDialect>>,
    records: Option<Records>,
}

impl MessageStatus {
    fn new(api: Arc<HttpApi<WhatsappDialect>>, records: Option<Records>) -> Self {
        let mut spec = ToolSpec::new("get_message_status", "WhatsApp: get a sent message's status", "Returns the latest delivery \
            status of a message sent from the connected number: sent, delivered, read (played for voice messages) or \
            failed, with the reason when it failed. WhatsApp reports statuses to the gateway by webhook, usually within \
            seconds; until one arrives the status is `unknown` and `note` says so.", LOCAL_READ)
            .arg(Arg::new("message_id", wamid("The `message_id` whatsapp_send_message or whatsapp_send_template returned.")).required().logged())
            .output(json!({ "type": "object", "required": ["id", "status"], "properties": {
                "id": { "type": "string" },
                "status": { "type": "string", "enum": ["unknown", "sent", "delivered", "read", "played", "failed"] },
                "timestamp": { "type": "string" },
                "recipient_id": { "type": "string" },
                "errors": { "type": "array" },
                "note": { "type": "string" } } }));
        Self { definition: spec.take_definition(Platform::Whatsapp), api, records }
    }
}

const NO_STATUS_YET: &str = "No status has arrived for this message yet. WhatsApp reports sent, delivered, read or failed \
    to the gateway by webhook, usually within seconds of sending; ask again shortly. Only messages sent from your own \
    connected number are shown.";

#[async_trait]
impl Tool for MessageStatus {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let credential = self.api.credential(credential)?;
        let Some(message_id) = arguments.get("message_id").and_then(Value::as_str) else {
            return Err(ToolFailure::invalid_arguments("`message_id` is required"));
        };
        let Some(records) = &self.records else {
            return Err(ToolFailure::new(FailureKind::NotSupported, "This gateway keeps no WhatsApp message statuses."));
        };
        let unavailable = |e: squaremcp_core::StoreError| {
            tracing::error!(error = %e, "the WhatsApp status store could not be read");
            ToolFailure::new(FailureKind::UpstreamTransient, "The gateway could not read message statuses. Try again shortly.")
        };
        let now = records.clock.now();
        let store = records.store.as_ref();
        let owner = routing::owner(store, Platform::Whatsapp, &credential.phone_number_id, now).await.map_err(unavailable)?;
        let found = match &owner {
            Some(owner) => status::get(store, &owner.customer_id, message_id, now).await.map_err(unavailable)?,
            None => None,
        };
        let structured = match found {
            Some(record) => {
                let mut shown = json!({ "id": record.id, "status": record.status.as_str(), "timestamp": record.timestamp });
                if let Some(recipient) = record.recipient_id {
                    shown["recipient_id"] = json!(recipient);
                }
                if let Some(errors) = record.errors {
                    shown["errors"] = errors;
                }
                shown
            }
            None if owner.is_none() => json!({ "id": message_id, "status": "unknown", "note": format!("{NO_STATUS_YET} This \
                number's webhooks are not routed to this account: store the WhatsApp credential again to connect them.") }),
            None => json!({ "id": message_id, "status": "unknown", "note": NO_STATUS_YET }),
        };
        Ok(ToolOutput { structured })
    }
}

// Schemas: inputs use only the keywords the gateway's validator knows; outputs promise the fields
// WhatsApp always sends and let everything else through.

fn wamid(description: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 256, "description": format!("{description} A WhatsApp message id (wamid.…).") })
}

fn sent() -> Value {
    let text = json!({ "type": "string" });
    json!({ "type": "object", "required": ["message_id", "messages"], "properties": {
        "message_id": text,
        "messaging_product": text,
        "contacts": { "type": "array", "items": { "type": "object", "properties": { "input": text, "wa_id": text } } },
        "messages": { "type": "array", "items": { "type": "object", "required": ["id"], "properties": { "id": text, "message_status": text } } } } })
}

fn template() -> Value {
    let text = json!({ "type": "string" });
    json!({ "type": "object", "required": ["name", "language", "status"], "properties": {
        "id": text, "name": text, "language": text, "status": text, "category": text, "parameter_format": text,
        "components": { "type": "array", "items": { "type": "object" } } } })
}
