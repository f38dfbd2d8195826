//! The five email tools: declared with the kit (one argument list gives schema, required list and
//! log allow-list), run by handlers that speak IMAP and SMTP.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use mail_parser::{MessageParser, MimeHeaders as _};
use serde_json::{Map, Value, json};
use squaremcp_core::Secret;
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};

use super::credential::Account;
use super::imap::{self, Imap, Piece, astring, mailbox, message_id, parse_message_id, utf7};
use super::smtp::{self, Draft};
use crate::kit::http::scrub;
use crate::kit::object_schema as object;
use crate::kit::spec::{flag, integer_between, string, text};
use crate::kit::{Arg, CredentialDocument, NetworkPolicy, PlatformContext, ToolSpec, credential::unusable};

/// Raw messages are fetched up to this size; attachments beyond it are listed as far as seen.
const MAX_FETCH_BYTES: usize = 10 * 1024 * 1024;
const DEFAULT_MAX_CHARS: usize = 20_000;

/// `read_message` changes nothing unless `mark_read` is true, and then only sets `\Seen`: not
/// read-only, but idempotent and not destructive.
const MAY_MARK_READ: Annotations = Annotations { read_only: false, destructive: false, idempotent: true, open_world: true };

#[derive(Clone, Copy)]
enum Op {
    ListFolders,
    Search,
    Read,
    Send,
    CreateDraft,
}

/// Every email tool.
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    specs()
        .into_iter()
        .map(|(mut spec, op)| -> Arc<dyn Tool> {
            Arc::new(EmailTool { definition: spec.take_definition(squaremcp_core::Platform::Email), op, network: context.network.clone() })
        })
        .collect()
}

fn specs() -> Vec<(ToolSpec, Op)> {
    let folder = || Arg::new("folder", string("The folder, as email_list_folders names it (default INBOX)."));
    let limit = || Arg::new("limit", integer_between(1, 100, "At most this many messages, newest first (1 to 100, default 20).")).logged();
    vec![
        (
            ToolSpec::new("list_folders", "Email: list folders", "Lists the mailbox's folders with their decoded names, hierarchy \
                delimiter, IMAP attributes and special use (`inbox`, `drafts`, `sent`, `trash`, `junk`, `archive`, `all`, \
                `flagged`). With `with_counts`, each selectable folder also gets its message and unread counts.", Annotations::READ)
                .arg(Arg::new("with_counts", flag("True to add `messages` and `unseen` counts per folder (one STATUS each).")).logged())
                .output(object(&["folders"], json!({ "folders": { "type": "array", "items": folder_schema() } }))),
            Op::ListFolders,
        ),
        (
            ToolSpec::new("search_messages", "Email: search messages", "Searches one folder; every criterion given must match \
                (they are combined with AND; text matches are case-insensitive substrings, any language). Returns the newest \
                matches first with an `id` for email_read_message, and `total` matches. Nothing is marked read.", Annotations::READ)
                .arg(folder())
                .arg(Arg::new("query", text(500, "Text anywhere in the headers or body.")))
                .arg(Arg::new("from", text(300, "Text in the From address or name.")))
                .arg(Arg::new("to", text(300, "Text in the To address or name.")))
                .arg(Arg::new("subject", text(500, "Text in the subject.")))
                .arg(Arg::new("since", date("Received on or after this day, YYYY-MM-DD.")).logged())
                .arg(Arg::new("before", date("Received before this day (exclusive), YYYY-MM-DD.")).logged())
                .arg(Arg::new("unread", flag("True for unread messages only, false for read ones only.")).logged())
                .arg(Arg::new("flagged", flag("True for flagged (starred) messages only, false for unflagged ones.")).logged())
                .arg(limit())
                .output(object(&["folder", "total", "messages"], json!({
                    "folder": { "type": "string" }, "uidvalidity": { "type": "integer" }, "total": { "type": "integer" },
                    "messages": { "type": "array", "items": summary_schema() } }))),
            Op::Search,
        ),
        (
            ToolSpec::new("read_message", "Email: read a message", "Reads one message by the `id` from email_search_messages: \
                headers, the text (an HTML-only message converted to readable text), and the attachments as a list (name, \
                type, size; their contents are not returned). The text is cut at `max_chars` with a clear marker. Reading does \
                not mark the message read unless `mark_read` is true.", MAY_MARK_READ)
                .arg(Arg::new("id", text(1000, "The message's `id` from email_search_messages.")).required().logged())
                .arg(Arg::new("include_html", flag("True to also return the raw HTML body, when there is one.")).logged())
                .arg(Arg::new("max_chars", integer_between(500, 200_000, "Cut the text (and HTML) after this many characters (default 20000).")).logged())
                .arg(Arg::new("mark_read", flag("True to mark the message read (sets \\Seen). Only when the person asked.")).logged())
                .output(object(&["id", "folder", "subject", "from", "to", "text", "truncated", "attachments"], json!({
                    "id": { "type": "string" }, "folder": { "type": "string" }, "uid": { "type": "integer" },
                    "subject": { "type": "string" }, "from": { "type": "string" },
                    "to": { "type": "array", "items": { "type": "string" } }, "cc": { "type": "array", "items": { "type": "string" } },
                    "date": { "type": ["string", "null"] }, "message_id": { "type": ["string", "null"] },
                    "in_reply_to": { "type": ["string", "null"] }, "references": { "type": ["string", "null"] },
                    "flags": { "type": "array", "items": { "type": "string" } }, "text": { "type": "string" },
                    "truncated": { "type": "boolean" }, "html": { "type": "string" },
                    "attachments": { "type": "array", "items": attachment_schema() } }))),
            Op::Read,
        ),
        (
            ToolSpec::new("send_email", "Email: send an email", "Sends an email from the connected address through its SMTP \
                server, then files a copy in the Sent folder (unless the provider does so itself, as Gmail does). To reply, \
                set `in_reply_to` (and `references`) to the original's `message_id` from email_read_message. Sending cannot \
                be undone: confirm recipients and content with the person first.", Annotations::WRITE)
                .arg(Arg::new("to", addresses(1, "Recipients, e.g. \"Ann <ann@example.com>\" or \"ann@example.com\".")).required())
                .arg(Arg::new("cc", addresses(0, "Copy recipients.")))
                .arg(Arg::new("bcc", addresses(0, "Blind copy recipients (not shown to the others).")))
                .arg(Arg::new("subject", text(998, "The subject.")).required())
                .arg(Arg::new("body", text(500_000, "The plain-text body.")).required())
                .arg(Arg::new("html", text(1_000_000, "An HTML version of the body, sent alongside the text.")))
                .arg(Arg::new("in_reply_to", text(998, "The `message_id` of the message this replies to, like <abc@example.com>.")))
                .arg(Arg::new("references", text(4000, "The thread's message ids, space-separated (the original's `references` plus its `message_id`).")))
                .output(object(&["message_id", "accepted", "sent_copy"], json!({
                    "message_id": { "type": "string" }, "accepted": { "type": "array", "items": { "type": "string" } },
                    "sent_copy": { "type": ["object", "null"], "properties": stored_properties() }, "note": { "type": "string" } }))),
            Op::Send,
        ),
        (
            ToolSpec::new("create_draft", "Email: create a draft", "Saves a message in the Drafts folder (found by its special use), \
                flagged \\Draft, without sending it; the person can finish and send it from their mail app. Returns its \
                folder, UID and `id`. Every field is optional.", Annotations::WRITE)
                .arg(Arg::new("to", addresses(0, "Recipients.")))
                .arg(Arg::new("cc", addresses(0, "Copy recipients.")))
                .arg(Arg::new("bcc", addresses(0, "Blind copy recipients (kept in the draft).")))
                .arg(Arg::new("subject", text(998, "The subject.")))
                .arg(Arg::new("body", text(500_000, "The plain-text body.")))
                .arg(Arg::new("html", text(1_000_000, "An HTML version of the body.")))
                .arg(Arg::new("in_reply_to", text(998, "The `message_id` of the message this replies to.")))
                .arg(Arg::new("references", text(4000, "The thread's message ids, space-separated.")))
                .output(object(&["message_id", "folder"], stored_properties())),
            Op::CreateDraft,
        ),
    ]
}

struct EmailTool {
    definition: ToolDefinition,
    op: Op,
    network: NetworkPolicy,
}

#[async_trait]
impl Tool for EmailTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let account = Account::parse(credential.expose()).map_err(|error| unusable("email", &error))?;
        let mut outcome = self.run(&account, &arguments).await;
        // A read is tried once more after a broken connection; a write that is not idempotent never is.
        if self.definition.annotations.idempotent && matches!(&outcome, Err(f) if f.kind == FailureKind::UpstreamTransient) {
            tracing::debug!(platform = "email", tool = %self.definition.name, "retrying a read once after a transient failure");
            outcome = self.run(&account, &arguments).await;
        }
        outcome.map(|structured| ToolOutput { structured }).map_err(|mut failure| {
            failure.message = scrub(&failure.message, &account.secrets());
            tracing::debug!(platform = "email", tool = %self.definition.name, kind = failure.kind.as_str(), "the mail server refused the call");
            failure
        })
    }
}

impl EmailTool {
    async fn run(&self, account: &Account, arguments: &Map<String, Value>) -> Result<Value, ToolFailure> {
        let work = async {
            match self.op {
                Op::Send => return send(account, &self.network, arguments).await,
                Op::ListFolders | Op::Search | Op::Read | Op::CreateDraft => {}
            }
            let mut imap = imap::connect(account, &self.network).await?;
            let result = match self.op {
                Op::ListFolders => list_folders(&mut imap, arguments).await,
                Op::Search => search(&mut imap, arguments).await,
                Op::Read => read(&mut imap, arguments).await,
                Op::CreateDraft => create_draft(&mut imap, account, arguments).await,
                Op::Send => Ok(Value::Null),
            };
            imap::close(imap).await;
            result
        };
        tokio::time::timeout(imap::CALL_TIMEOUT, work).await.unwrap_or_else(|_| {
            Err(ToolFailure::new(FailureKind::UpstreamTransient, "The mail server did not answer in time. Try again shortly."))
        })
    }
}

async fn list_folders(imap: &mut Imap, arguments: &Map<String, Value>) -> Result<Value, ToolFailure> {
    let with_counts = arguments.get("with_counts").and_then(Value::as_bool) == Some(true);
    let folders = imap::list_folders(imap).await?;
    let mut listed = Vec::with_capacity(folders.len());
    for folder in folders {
        let special_use = if folder.raw.eq_ignore_ascii_case("INBOX") { Some("inbox") } else { folder.special_use };
        let mut entry = json!({ "name": folder.name, "delimiter": folder.delimiter, "attributes": folder.attributes,
            "special_use": special_use, "selectable": folder.selectable });
        if with_counts && folder.selectable {
            let status = imap.session.status(&folder.raw, "(MESSAGES UNSEEN)").await.map_err(|e| imap::failure("STATUS", &e))?;
            entry["messages"] = json!(status.exists);
            entry["unseen"] = json!(status.unseen.unwrap_or(0));
        }
        listed.push(entry);
    }
    Ok(json!({ "folders": listed }))
}

async fn search(imap: &mut Imap, arguments: &Map<String, Value>) -> Result<Value, ToolFailure> {
    let folder = arguments.get("folder").and_then(Value::as_str).unwrap_or("INBOX");
    let raw = mailbox(folder)?;
    let limit = arguments.get("limit").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()).unwrap_or(20);
    let selected = imap.session.examine(&raw).await.map_err(|e| imap::failure("EXAMINE", &e))?;
    let uidvalidity = selected.uid_validity.unwrap_or(0);

    let mut criteria: Vec<Piece> = Vec::new();
    let mut utf8 = false;
    let mut term = |key: &str, value: &str| {
        utf8 |= !value.is_ascii();
        criteria.push(Piece::Text(format!(" {key} ")));
        criteria.push(astring(value));
    };
    for (argument, key) in [("query", "TEXT"), ("from", "FROM"), ("to", "TO"), ("subject", "SUBJECT")] {
        if let Some(value) = arguments.get(argument).and_then(Value::as_str) {
            term(key, value);
        }
    }
    for (argument, key) in [("since", "SINCE"), ("before", "BEFORE")] {
        if let Some(day) = arguments.get(argument).and_then(Value::as_str) {
            criteria.push(Piece::Text(format!(" {key} {}", imap_date(argument, day)?)));
        }
    }
    for (argument, yes, no) in [("unread", "UNSEEN", "SEEN"), ("flagged", "FLAGGED", "UNFLAGGED")] {
        if let Some(wanted) = arguments.get(argument).and_then(Value::as_bool) {
            criteria.push(Piece::Text(format!(" {}", if wanted { yes } else { no })));
        }
    }
    if criteria.is_empty() {
        criteria.push(Piece::Text(" ALL".to_owned()));
    }
    let mut pieces = vec![Piece::Text(if utf8 { "UID SEARCH CHARSET UTF-8".to_owned() } else { "UID SEARCH".to_owned() })];
    pieces.extend(criteria);
    let mut uids = imap::command(imap, "SEARCH", pieces).await?.search;
    uids.sort_unstable_by(|a, b| b.cmp(a));
    uids.dedup();
    let total = uids.len();
    uids.truncate(limit);

    let mut messages = Vec::new();
    if !uids.is_empty() {
        let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let fetched: Vec<_> = imap
            .session
            .uid_fetch(&set, "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])")
            .await
            .map_err(|e| imap::failure("FETCH", &e))?
            .try_collect()
            .await
            .map_err(|e| imap::failure("FETCH", &e))?;
        for fetch in &fetched {
            let Some(uid) = fetch.uid else { continue };
            let header = fetch.header().and_then(|bytes| MessageParser::default().parse_headers(bytes));
            let flags = flags(fetch.flags());
            messages.push(json!({
                "id": message_id(&imap.mailbox, &raw, uidvalidity, uid),
                "uid": uid,
                "date": fetch.internal_date().map(|d| d.to_rfc3339()),
                "from": header.as_ref().and_then(|h| h.from()).map(first_address).unwrap_or_default(),
                "to": header.as_ref().and_then(|h| h.to()).map(all_addresses).unwrap_or_default(),
                "subject": header.as_ref().and_then(|h| h.subject()).unwrap_or_default(),
                "seen": flags.iter().any(|f| f == "\\Seen"),
                "flags": flags,
                "size": fetch.size,
            }));
        }
        messages.sort_by_key(|m| std::cmp::Reverse(m["uid"].as_u64()));
    }
    Ok(json!({ "folder": utf7::decode(&raw), "uidvalidity": uidvalidity, "total": total, "messages": messages }))
}

async fn read(imap: &mut Imap, arguments: &Map<String, Value>) -> Result<Value, ToolFailure> {
    let id = arguments.get("id").and_then(Value::as_str).unwrap_or_default();
    let (raw, uidvalidity, uid) = parse_message_id(id, &imap.mailbox)?;
    let mark_read = arguments.get("mark_read").and_then(Value::as_bool) == Some(true);
    let max_chars = arguments.get("max_chars").and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok()).unwrap_or(DEFAULT_MAX_CHARS);
    let folder = raw.clone();
    let selected = if mark_read { imap.session.select(&folder).await } else { imap.session.examine(&folder).await }
        .map_err(|e| imap::failure(if mark_read { "SELECT" } else { "EXAMINE" }, &e))?;
    if selected.uid_validity.is_some_and(|now| now != uidvalidity) {
        return Err(ToolFailure::new(FailureKind::NotFound, "The folder was rebuilt since this id was issued (UIDVALIDITY changed): search again."));
    }
    // BODY.PEEK: fetching never sets \Seen.
    let query = format!("(UID FLAGS RFC822.SIZE BODY.PEEK[]<0.{MAX_FETCH_BYTES}>)");
    let fetched: Vec<_> = imap
        .session
        .uid_fetch(uid.to_string(), &query)
        .await
        .map_err(|e| imap::failure("FETCH", &e))?
        .try_collect()
        .await
        .map_err(|e| imap::failure("FETCH", &e))?;
    let Some(fetch) = fetched.iter().find(|f| f.uid == Some(uid)) else {
        return Err(ToolFailure::new(FailureKind::NotFound, "No message with this id: it was moved or deleted. Search again."));
    };
    let mut flags = flags(fetch.flags());
    let bytes = fetch.body().unwrap_or_default();
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or_else(|| ToolFailure::new(FailureKind::Upstream, "The message could not be parsed as email (RFC 5322)."))?;
    if mark_read {
        let _: Vec<_> = imap
            .session
            .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
            .await
            .map_err(|e| imap::failure("STORE", &e))?
            .try_collect()
            .await
            .map_err(|e| imap::failure("STORE", &e))?;
        if !flags.iter().any(|f| f == "\\Seen") {
            flags.push("\\Seen".to_owned());
        }
    }
    let (text, mut truncated) = capped(&message.body_text(0).unwrap_or_default(), max_chars);
    let mut output = json!({
        "id": id,
        "folder": utf7::decode(&raw),
        "uid": uid,
        "subject": message.subject().unwrap_or_default(),
        "from": message.from().map(first_address).unwrap_or_default(),
        "to": message.to().map(all_addresses).unwrap_or_default(),
        "cc": message.cc().map(all_addresses).unwrap_or_default(),
        "date": message.date().map(|d| d.to_rfc3339()),
        "message_id": message.message_id().map(|m| format!("<{m}>")),
        "in_reply_to": ids(message.in_reply_to()),
        "references": ids(message.references()),
        "flags": flags,
        "text": text,
        "attachments": message.attachments().enumerate().map(|(index, part)| json!({
            "filename": part.attachment_name().unwrap_or("(unnamed)"),
            "mime": part.content_type().map(|t| match t.subtype() { Some(sub) => format!("{}/{sub}", t.ctype()), None => t.ctype().to_owned() })
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            "size": part.contents().len(),
            "part": index + 1,
        })).collect::<Vec<_>>(),
    });
    let has_html = message.html_part(0).is_some_and(|part| part.is_text_html());
    if arguments.get("include_html").and_then(Value::as_bool) == Some(true) && has_html {
        let (html, cut) = capped(&message.body_html(0).unwrap_or_default(), max_chars);
        output["html"] = json!(html);
        truncated |= cut;
    }
    if bytes.len() >= MAX_FETCH_BYTES {
        truncated = true;
    }
    output["truncated"] = json!(truncated);
    Ok(output)
}

async fn send(account: &Account, network: &NetworkPolicy, arguments: &Map<String, Value>) -> Result<Value, ToolFailure> {
    let draft = draft(arguments);
    let (message, header_id) = smtp::build(account, &draft, false)?;
    let accepted = smtp::send(account, network, &message).await?;
    // Sent: from here on, never fail the call (a retry would send it twice).
    let (sent_copy, note) = match file_sent_copy(account, network, &message.formatted()).await {
        Ok(Some(stored)) => (stored, None),
        Ok(None) => (Value::Null, Some("The provider files sent mail in Sent itself (Gmail): no copy was added.".to_owned())),
        Err(failure) => {
            tracing::info!(platform = "email", kind = failure.kind.as_str(), "the message was sent but its copy could not be filed in Sent");
            (Value::Null, Some(format!("The message was sent, but no copy could be filed in Sent: {}", failure.message)))
        }
    };
    let mut output = json!({ "message_id": header_id, "accepted": accepted, "sent_copy": sent_copy });
    if let Some(note) = note {
        output["note"] = json!(scrub(&note, &account.secrets()));
    }
    Ok(output)
}

/// APPENDs a sent message to Sent, unless the server files sent mail itself (Gmail). `None`
/// when it does.
async fn file_sent_copy(account: &Account, network: &NetworkPolicy, message: &[u8]) -> Result<Option<Value>, ToolFailure> {
    let mut imap = imap::connect(account, network).await?;
    let result = async {
        if imap.capabilities.contains("X-GM-EXT-1") {
            return Ok(None);
        }
        let folder = imap::special_folder(&mut imap, "sent").await?.ok_or_else(|| {
            ToolFailure::new(FailureKind::NotFound, "the mailbox has no Sent folder (no \\Sent special use, no folder named Sent)")
        })?;
        let stored = imap::append(&mut imap, &folder, "\\Seen", message.to_vec()).await?;
        Ok(Some(stored_json(&imap.mailbox, &folder, stored)))
    }
    .await;
    imap::close(imap).await;
    result
}

async fn create_draft(imap: &mut Imap, account: &Account, arguments: &Map<String, Value>) -> Result<Value, ToolFailure> {
    let draft = draft(arguments);
    let (message, header_id) = smtp::build(account, &draft, true)?;
    let folder = imap::special_folder(imap, "drafts").await?.ok_or_else(|| {
        ToolFailure::new(FailureKind::NotFound, "The mailbox has no Drafts folder (no \\Drafts special use, no folder named Drafts).")
    })?;
    let stored = imap::append(imap, &folder, "\\Draft \\Seen", message.formatted()).await?;
    let mut output = stored_json(&imap.mailbox, &folder, stored);
    output["message_id"] = json!(header_id);
    Ok(output)
}

fn stored_json(mailbox: &str, folder: &str, stored: Option<(u32, u32)>) -> Value {
    match stored {
        Some((uidvalidity, uid)) => json!({ "folder": utf7::decode(folder), "uid": uid, "uidvalidity": uidvalidity,
            "id": message_id(mailbox, folder, uidvalidity, uid) }),
        None => json!({ "folder": utf7::decode(folder), "uid": null, "id": null,
            "note": "The server does not report new UIDs (no UIDPLUS); find the message with email_search_messages." }),
    }
}

fn draft(arguments: &Map<String, Value>) -> Draft {
    let list = |key: &str| -> Vec<String> {
        arguments.get(key).and_then(Value::as_array).map(|v| v.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
    };
    let text = |key: &str| arguments.get(key).and_then(Value::as_str).map(str::to_owned);
    Draft {
        to: list("to"),
        cc: list("cc"),
        bcc: list("bcc"),
        subject: text("subject").unwrap_or_default(),
        text: text("body").unwrap_or_default(),
        html: text("html"),
        in_reply_to: text("in_reply_to"),
        references: text("references"),
    }
}

/// `YYYY-MM-DD` → IMAP's `1-Feb-2026`.
fn imap_date(argument: &str, day: &str) -> Result<String, ToolFailure> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let invalid = || ToolFailure::invalid_arguments(format!("`{argument}` must be a day like 2026-02-01"));
    let mut parts = day.split('-');
    let (Some(year), Some(month), Some(date), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else { return Err(invalid()) };
    let year: u16 = year.parse().ok().filter(|y| (1970..=9999).contains(y)).ok_or_else(invalid)?;
    let month: usize = month.parse().ok().filter(|m| (1..=12).contains(m)).ok_or_else(invalid)?;
    let date: u8 = date.parse().ok().filter(|d| (1..=31).contains(d)).ok_or_else(invalid)?;
    Ok(format!("{date}-{}-{year}", MONTHS[month - 1]))
}

fn flags<'a>(flags: impl Iterator<Item = async_imap::types::Flag<'a>>) -> Vec<String> {
    use async_imap::types::Flag;
    flags
        .map(|flag| match flag {
            Flag::Seen => "\\Seen".to_owned(),
            Flag::Answered => "\\Answered".to_owned(),
            Flag::Flagged => "\\Flagged".to_owned(),
            Flag::Deleted => "\\Deleted".to_owned(),
            Flag::Draft => "\\Draft".to_owned(),
            Flag::Recent => "\\Recent".to_owned(),
            Flag::MayCreate => "\\*".to_owned(),
            Flag::Custom(other) => other.to_string(),
        })
        .collect()
}

fn format_address(addr: &mail_parser::Addr<'_>) -> String {
    match (addr.name(), addr.address()) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        (None, Some(address)) => address.to_owned(),
        (Some(name), None) => name.to_owned(),
        (None, None) => String::new(),
    }
}

fn first_address(address: &mail_parser::Address<'_>) -> String {
    address.first().map(format_address).unwrap_or_default()
}

fn all_addresses(address: &mail_parser::Address<'_>) -> Vec<String> {
    address.iter().map(format_address).collect()
}

/// Message ids of In-Reply-To / References, as `<a> <b>`.
fn ids(value: &mail_parser::HeaderValue<'_>) -> Option<String> {
    let list: Vec<String> = match value {
        mail_parser::HeaderValue::Text(id) => vec![format!("<{id}>")],
        mail_parser::HeaderValue::TextList(ids) => ids.iter().map(|id| format!("<{id}>")).collect(),
        _ => Vec::new(),
    };
    (!list.is_empty()).then(|| list.join(" "))
}

/// `text` cut after `max` characters with a marker saying how much was left out.
fn capped(text: &str, max: usize) -> (String, bool) {
    let total = text.chars().count();
    if total <= max {
        return (text.to_owned(), false);
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push_str(&format!("\n\n[… truncated: {} more characters not shown; raise `max_chars` to read further …]", total - max));
    (cut, true)
}

// Schemas.

fn date(description: &str) -> Value {
    json!({ "type": "string", "minLength": 10, "maxLength": 10, "description": description })
}

fn addresses(min: u64, description: &str) -> Value {
    json!({ "type": "array", "minItems": min, "maxItems": 100, "items": { "type": "string", "minLength": 3, "maxLength": 320 },
        "description": description })
}

fn folder_schema() -> Value {
    let strings = json!({ "type": "array", "items": { "type": "string" } });
    object(&["name", "attributes"], json!({ "name": { "type": "string" }, "delimiter": { "type": ["string", "null"] },
        "attributes": strings, "special_use": { "type": ["string", "null"] }, "selectable": { "type": "boolean" },
        "messages": { "type": "integer" }, "unseen": { "type": "integer" } }))
}

fn summary_schema() -> Value {
    object(&["id", "uid", "subject", "from", "flags"], json!({ "id": { "type": "string" }, "uid": { "type": "integer" },
        "date": { "type": ["string", "null"] }, "from": { "type": "string" }, "to": { "type": "array", "items": { "type": "string" } },
        "subject": { "type": "string" }, "seen": { "type": "boolean" }, "flags": { "type": "array", "items": { "type": "string" } },
        "size": { "type": ["integer", "null"] } }))
}

fn attachment_schema() -> Value {
    object(&["filename", "mime", "size"], json!({ "filename": { "type": "string" }, "mime": { "type": "string" },
        "size": { "type": "integer" }, "part": { "type": "integer" } }))
}

fn stored_properties() -> Value {
    json!({ "folder": { "type": "string" }, "uid": { "type": ["integer", "null"] }, "uidvalidity": { "type": "integer" },
        "id": { "type": ["string", "null"] }, "message_id": { "type": "string" }, "note": { "type": "string" } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_become_imap_dates_and_anything_else_is_refused() {
        assert_eq!(imap_date("since", "2026-02-01").expect("a day"), "1-Feb-2026");
        assert_eq!(imap_date("before", "1999-12-31").expect("a day"), "31-Dec-1999");
        for bad in ["2026-13-01", "2026-02", "yesterday", "2026-02-01-01", "26-02-01"] {
            assert_eq!(imap_date("since", bad).expect_err(bad).kind, FailureKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let (short, cut) = capped("héllo", 10);
        assert_eq!((short.as_str(), cut), ("héllo", false));
        let (long, cut) = capped(&"é".repeat(30), 10);
        assert!(cut && long.starts_with(&"é".repeat(10)) && long.contains("truncated: 20 more characters"), "{long}");
    }

    #[test]
    fn sending_is_a_write_and_reading_may_only_mark_read() {
        let annotations: Vec<(String, Annotations)> = specs().into_iter().map(|(spec, _)| (spec.name.to_owned(), spec.annotations)).collect();
        assert_eq!(annotations, [
            ("list_folders".to_owned(), Annotations::READ),
            ("search_messages".to_owned(), Annotations::READ),
            ("read_message".to_owned(), MAY_MARK_READ),
            ("send_email".to_owned(), Annotations::WRITE),
            ("create_draft".to_owned(), Annotations::WRITE),
        ]);
    }
}
