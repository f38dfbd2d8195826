//! The five Obsidian tools: declared with the kit, run on a [`Vault`] opened per call from the
//! credential (a directory under the operator's root, or an S3 bucket and prefix).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::Secret;
use squaremcp_core::tool::{Annotations, FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};

use super::ObsidianSettings;
use super::credential::{S3Credential, VaultCredential};
use super::frontmatter;
use super::paths::NotePath;
use super::s3::S3Vault;
use super::search::{self, Caps, Matcher};
use super::vault::{Condition, Directory, Vault, VaultError};
use crate::kit::http::scrub;
use crate::kit::object_schema as object;
use crate::kit::spec::{flag, integer_between, text};
use crate::kit::{Arg, CredentialDocument, NetworkPolicy, PlatformContext, ToolSpec, credential::unusable};

const DEFAULT_MAX_CHARS: usize = 50_000;
/// How often an append re-reads and retries after losing a race with a concurrent write.
const APPEND_ATTEMPTS: usize = 3;

#[derive(Clone, Copy)]
enum Op {
    Search,
    Read,
    Append,
    Update,
    SyncStatus,
}

pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    specs()
        .into_iter()
        .map(|(mut spec, op)| -> Arc<dyn Tool> {
            Arc::new(ObsidianTool {
                definition: spec.take_definition(squaremcp_core::Platform::Obsidian),
                op,
                network: context.network.clone(),
                settings: context.obsidian.clone(),
                caps: Caps {
                    time: context.obsidian.search_time_limit,
                    bytes: context.obsidian.search_byte_limit,
                    parallel: search::PARALLEL_READS,
                },
            })
        })
        .collect()
}

fn path_arg(description: &str) -> Arg {
    Arg::new("path", text(1024, description)).required()
}

fn specs() -> Vec<(ToolSpec, Op)> {
    let written = || object(&["path", "version", "created"], json!({
        "path": { "type": "string" }, "version": { "type": "string" }, "created": { "type": "boolean" } }));
    vec![
        (
            ToolSpec::new("search_notes", "Obsidian: search notes", "Searches the vault's Markdown notes (not `.obsidian/`, \
                `.trash/` or attachments) for text, or a regular expression with `regex`, line by line. Returns each match's \
                note path, line number, line and the lines around it, in path order. The search is bounded (10 s, 256 MB read, \
                notes over 5 MB skipped): `truncated` and `stopped_by` say when it stopped early; narrow it with `folder`.", Annotations::READ)
                .arg(Arg::new("query", text(500, "The text to find (case-insensitive unless `case_sensitive`), or a regular expression with `regex`.")).required())
                .arg(Arg::new("regex", flag("True to read `query` as a regular expression (Rust regex syntax, no look-around).")).logged())
                .arg(Arg::new("case_sensitive", flag("True to match case exactly.")).logged())
                .arg(Arg::new("folder", text(1024, "Only notes in this vault folder (and its subfolders), like `Projects/2026`.")))
                .arg(Arg::new("limit", integer_between(1, 200, "At most this many matching lines (1 to 200, default 50).")).logged())
                .arg(Arg::new("context_lines", integer_between(0, 5, "Lines of context before and after each match (0 to 5, default 1).")).logged())
                .output(object(&["matches", "truncated"], json!({
                    "matches": { "type": "array", "items": object(&["path", "line", "text"], json!({
                        "path": { "type": "string" }, "line": { "type": "integer" }, "text": { "type": "string" },
                        "before": { "type": "array", "items": { "type": "string" } }, "after": { "type": "array", "items": { "type": "string" } } })) },
                    "notes_total": { "type": "integer" }, "notes_scanned": { "type": "integer" }, "skipped_too_large": { "type": "integer" },
                    "truncated": { "type": "boolean" }, "stopped_by": { "type": ["string", "null"] }, "elapsed_ms": { "type": "integer" } }))),
            Op::Search,
        ),
        (
            ToolSpec::new("read_note", "Obsidian: read a note", "Reads one note by its vault-relative path (`Folder/Note.md`; \
                `.md` may be left out). Returns the front matter parsed (`front_matter`) and raw (`front_matter_raw`) apart \
                from the body, and the note's `version` for obsidian_update_note. The body is cut at `max_chars` with \
                `truncated` true.", Annotations::READ)
                .arg(path_arg("The note's path inside the vault, like `Projects/Plan.md`."))
                .arg(Arg::new("max_chars", integer_between(1000, 500_000, "Cut the body after this many characters (default 50000).")).logged())
                .output(object(&["path", "body", "version", "truncated"], json!({
                    "path": { "type": "string" }, "front_matter": { "type": ["object", "null"] }, "front_matter_raw": { "type": ["string", "null"] },
                    "body": { "type": "string" }, "truncated": { "type": "boolean" }, "version": { "type": "string" },
                    "modified": { "type": ["string", "null"] }, "size": { "type": "integer" } }))),
            Op::Read,
        ),
        (
            ToolSpec::new("append_to_note", "Obsidian: append to a note", "Adds text at the end of a note (on a new line), \
                creating the note when it does not exist. Safe against a concurrent sync: the note is re-read and the append \
                retried if it changed meanwhile. Calling twice appends twice.", Annotations::WRITE)
                .arg(path_arg("The note's path inside the vault, like `Daily/2026-11-29.md`."))
                .arg(Arg::new("text", text(200_000, "The Markdown to append.")).required())
                .output(written()),
            Op::Append,
        ),
        (
            ToolSpec::new("update_note", "Obsidian: replace a note", "Replaces a note's whole content (front matter included) \
                or creates it. Pass the `version` from obsidian_read_note: if the note changed since (a sync, another edit), \
                nothing is written and a conflict is reported; read it again and redo the change. Without `version`, the \
                note must not exist yet unless `overwrite` is true. The previous content is lost: confirm first.", Annotations::DESTRUCTIVE)
                .arg(path_arg("The note's path inside the vault, like `Projects/Plan.md`."))
                .arg(Arg::new("content", json!({ "type": "string", "maxLength": 2_000_000, "description": "The note's new full Markdown content." })).required())
                .arg(Arg::new("version", text(200, "The `version` obsidian_read_note returned; the update is refused if the note changed since.")).logged())
                .arg(Arg::new("overwrite", flag("True to replace an existing note without a `version` (still refused if it changes during the call).")).logged())
                .output(written()),
            Op::Update,
        ),
        (
            ToolSpec::new("sync_status", "Obsidian: sync status", "Tells what can be seen of the vault's sync: for a vault on \
                S3 (Remotely Save) the newest object's time, the note count and Remotely Save's metadata file; for a vault \
                directory the `git status` summary of a git vault (or Obsidian Headless Sync's status when the gateway is set \
                up for it), else the last change time and note count.", Annotations::READ)
                .output(object(&["backend", "note_count"], json!({
                    "backend": { "type": "string" }, "source": { "type": "string" }, "note_count": { "type": "integer" },
                    "last_change": { "type": ["string", "null"] } }))),
            Op::SyncStatus,
        ),
    ]
}

struct ObsidianTool {
    definition: ToolDefinition,
    op: Op,
    network: NetworkPolicy,
    settings: ObsidianSettings,
    caps: Caps,
}

#[async_trait]
impl Tool for ObsidianTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let parsed = VaultCredential::parse(credential.expose()).map_err(|error| unusable("obsidian", &error))?;
        let secrets: Vec<String> = parsed.secrets().into_iter().map(str::to_owned).collect();
        let outcome = async {
            let vault = self.open(parsed).await?;
            self.run(vault.as_ref(), &arguments).await
        }
        .await;
        outcome.map(|structured| ToolOutput { structured }).map_err(|failure| {
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let failure = ToolFailure { message: scrub(&failure.message, &secrets), ..failure };
            tracing::debug!(platform = "obsidian", tool = %self.definition.name, kind = failure.kind.as_str(), "the vault refused the call");
            failure
        })
    }
}

impl ObsidianTool {
    async fn open(&self, credential: VaultCredential) -> Result<Box<dyn Vault>, ToolFailure> {
        match credential {
            VaultCredential::S3(s3) => Ok(Box::new(S3Vault::open(s3, &self.network).await.map_err(to_failure)?)),
            VaultCredential::Directory { name } => {
                let Some(customer) = squaremcp_core::tool::caller() else {
                    return Err(ToolFailure::new(FailureKind::NotConfigured, "A named vault is only reachable in a call made for a customer."));
                };
                if let Some(root) = &self.settings.root {
                    let vault = Directory::open(root, customer.as_str(), &name, self.settings.ob_command.clone()).await.map_err(to_failure)?;
                    return Ok(Box::new(vault));
                }
                let Some(deployment) = &self.settings.deployment_bucket else {
                    return Err(ToolFailure::new(
                        FailureKind::NotConfigured,
                        "This gateway keeps no vaults of its own (neither SQUAREMCP_OBSIDIAN_ROOT nor SQUAREMCP_OBSIDIAN_BUCKET is set): connect a vault in your own S3 bucket instead.",
                    ));
                };
                let keys = deployment.keys.keys_for(&customer).await.map_err(|why| {
                    tracing::warn!(platform = "obsidian", error = %why, "no keys for the deployment's vault bucket");
                    ToolFailure::new(FailureKind::UpstreamTransient, "The gateway could not get access to its vault bucket just now; try again shortly.")
                })?;
                let credential = S3Credential {
                    bucket: deployment.bucket.clone(),
                    prefix: format!("{}/{name}/", customer.as_str()),
                    region: deployment.region.clone(),
                    endpoint: deployment.endpoint.clone(),
                    access_key_id: keys.access_key_id,
                    secret_access_key: keys.secret_access_key,
                    session_token: keys.session_token,
                };
                Ok(Box::new(S3Vault::open(credential, &self.network).await.map_err(to_failure)?))
            }
        }
    }

    async fn run(&self, vault: &dyn Vault, arguments: &Map<String, Value>) -> Result<Value, ToolFailure> {
        let string = |name: &'static str| -> Option<&str> { arguments.get(name).and_then(Value::as_str) };
        let flag = |name: &'static str| arguments.get(name).and_then(Value::as_bool) == Some(true);
        let number = |name: &'static str, default: usize| {
            arguments.get(name).and_then(Value::as_u64).map_or(default, |n| usize::try_from(n).unwrap_or(default))
        };
        let path = || -> Result<NotePath, ToolFailure> {
            NotePath::parse(arguments.get("path").and_then(Value::as_str).unwrap_or_default())
                .map_err(|e| ToolFailure::invalid_arguments(e.to_string()))
        };
        match self.op {
            Op::Search => {
                let matcher = Matcher::new(string("query").unwrap_or_default(), flag("regex"), flag("case_sensitive"))
                    .map_err(ToolFailure::invalid_arguments)?;
                let folder = string("folder").unwrap_or("");
                if !folder.is_empty() && folder.split('/').filter(|s| !s.is_empty()).any(|s| s == ".." || s == "." || s.eq_ignore_ascii_case(".obsidian")) {
                    return Err(ToolFailure::invalid_arguments(format!("`{folder}` is not a folder inside the vault")));
                }
                search::search(vault, &matcher, folder, number("limit", 50), number("context_lines", 1), self.caps).await.map_err(to_failure)
            }
            Op::Read => {
                let path = path()?;
                let note = vault.read(&path).await.map_err(to_failure)?.ok_or_else(|| to_failure(VaultError::NotFound(path.as_str().to_owned())))?;
                let text = String::from_utf8_lossy(&note.content);
                let (raw, body) = frontmatter::split(&text);
                let max_chars = number("max_chars", DEFAULT_MAX_CHARS);
                let (body, truncated) = match body.char_indices().nth(max_chars) {
                    Some((end, _)) => (&body[..end], true),
                    None => (body, false),
                };
                Ok(json!({ "path": path.as_str(), "front_matter": raw.map(frontmatter::parse), "front_matter_raw": raw,
                    "body": body, "truncated": truncated, "version": note.version, "modified": note.modified, "size": note.content.len() }))
            }
            Op::Append => {
                let path = path()?;
                let addition = string("text").unwrap_or_default();
                for _ in 0..APPEND_ATTEMPTS {
                    let current = vault.read(&path).await.map_err(to_failure)?;
                    let (content, condition) = match &current {
                        None => (with_newline(addition), Condition::Absent),
                        Some(note) => {
                            let mut content = note.content.clone();
                            if !content.is_empty() && !content.ends_with(b"\n") {
                                content.push(b'\n');
                            }
                            content.extend_from_slice(with_newline(addition).as_bytes());
                            (String::from_utf8_lossy(&content).into_owned(), Condition::Version(note.version.clone()))
                        }
                    };
                    match vault.write(&path, content.as_bytes(), &condition).await {
                        Ok(version) => return Ok(json!({ "path": path.as_str(), "version": version, "created": current.is_none() })),
                        Err(VaultError::Conflict(_)) => continue,
                        Err(other) => return Err(to_failure(other)),
                    }
                }
                Err(to_failure(VaultError::Conflict(path.as_str().to_owned())))
            }
            Op::Update => {
                let path = path()?;
                let content = string("content").unwrap_or_default();
                let condition = match (string("version"), flag("overwrite")) {
                    (Some(version), _) => Condition::Version(version.to_owned()),
                    (None, false) => Condition::Absent,
                    // Overwrite: conditional on what is there now, so a write during the call still loses nothing silently.
                    (None, true) => match vault.read(&path).await.map_err(to_failure)? {
                        Some(note) => Condition::Version(note.version),
                        None => Condition::Absent,
                    },
                };
                let created = matches!(condition, Condition::Absent);
                match vault.write(&path, content.as_bytes(), &condition).await {
                    Ok(version) => Ok(json!({ "path": path.as_str(), "version": version, "created": created })),
                    Err(VaultError::Conflict(p)) if created && string("version").is_none() => Err(ToolFailure::new(
                        FailureKind::InvalidInput,
                        format!("`{p}` already exists: read it with obsidian_read_note and pass its `version`, or set `overwrite`"),
                    )),
                    Err(other) => Err(to_failure(other)),
                }
            }
            Op::SyncStatus => vault.sync_status().await.map_err(to_failure),
        }
    }
}

fn with_newline(text: &str) -> String {
    if text.ends_with('\n') { text.to_owned() } else { format!("{text}\n") }
}

fn to_failure(error: VaultError) -> ToolFailure {
    let kind = match &error {
        VaultError::NotFound(_) => FailureKind::NotFound,
        // A conflict is the caller's to resolve: read again, redo the change.
        VaultError::Conflict(_) | VaultError::Refused(_) | VaultError::TooLarge(_) => FailureKind::InvalidInput,
        VaultError::NotConfigured(_) => FailureKind::NotConfigured,
        VaultError::Permission(_) => FailureKind::PermissionMissing,
        VaultError::Auth(_) => FailureKind::AuthRevoked,
        VaultError::Blocked(_) => FailureKind::Forbidden,
        VaultError::NotSupported(_) => FailureKind::NotSupported,
        VaultError::Transient(_) => FailureKind::UpstreamTransient,
        VaultError::Upstream(_) => FailureKind::Upstream,
    };
    let message = match &error {
        VaultError::Conflict(_) => format!("Conflict: {error}."),
        _ => error.to_string(),
    };
    ToolFailure::new(kind, message)
}
