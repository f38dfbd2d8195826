//! The vault trait and the directory backend.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use super::paths::{NotePath, is_note};

/// The largest note read or written (a note is text; bigger files are attachments).
pub(super) const MAX_NOTE_BYTES: u64 = 5 * 1024 * 1024;
/// How long `git` or `ob` may take in `sync_status`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// What a backend can fail with. Messages carry vault-relative paths, never contents or keys.
#[derive(Debug, Error)]
pub(super) enum VaultError {
    #[error("`{0}` does not exist in the vault")]
    NotFound(String),
    #[error("`{0}` changed since it was read (a sync or another edit): read it again and redo the change")]
    Conflict(String),
    #[error("{0}")]
    Refused(String),
    #[error("`{0}` is larger than 5 MB, too large for a note")]
    TooLarge(String),
    #[error("{0}")]
    NotConfigured(String),
    /// The credential works but may not do this (S3 `AccessDenied`, file permissions).
    #[error("{0}")]
    Permission(String),
    /// The store refused the key itself: connect again.
    #[error("{0}")]
    Auth(String),
    /// The SSRF guard refused the customer's endpoint.
    #[error("{0}")]
    Blocked(String),
    #[error("{0}")]
    NotSupported(String),
    /// The storage failed or did not answer; the same call may work later.
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Upstream(String),
}

/// A file in the vault: vault-relative path, size, last change (RFC 3339) when known.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub path: String,
    pub size: u64,
    pub modified: Option<String>,
}

/// A note's bytes and its version: what a conditional write must still find.
pub(super) struct Note {
    pub content: Vec<u8>,
    pub version: String,
    pub modified: Option<String>,
}

/// What a write requires of the note it replaces.
#[derive(Clone, Debug)]
pub(super) enum Condition {
    /// The note must not exist yet.
    Absent,
    /// The note must still be at this version.
    Version(String),
}

/// One vault, directory or S3.
#[async_trait]
pub(super) trait Vault: Send + Sync {
    /// Every file outside dot-folders (`.obsidian/`, `.trash/`, `.git/`), with `complete` false
    /// when the listing stopped at its cap.
    async fn list(&self) -> Result<(Vec<Entry>, bool), VaultError>;
    /// The note, or `None` when it does not exist.
    async fn read(&self, path: &NotePath) -> Result<Option<Note>, VaultError>;
    /// Writes the whole note atomically if `condition` holds, else [`VaultError::Conflict`].
    /// Returns the new version.
    async fn write(&self, path: &NotePath, content: &[u8], condition: &Condition) -> Result<String, VaultError>;
    /// What the backend can tell about the vault's sync.
    async fn sync_status(&self) -> Result<Value, VaultError>;
}

/// The most files a listing returns.
pub(super) const MAX_LISTED: usize = 100_000;

pub(super) fn rfc3339(time: SystemTime) -> Option<String> {
    time::OffsetDateTime::from(time).format(&time::format_description::well_known::Rfc3339).ok()
}

/// A vault on the gateway's disk.
pub(super) struct Directory {
    /// Canonical: symlinks resolved, so containment is a prefix check.
    root: PathBuf,
    ob_command: Option<PathBuf>,
}

impl Directory {
    /// `<root>/<customer>/<name>`, which must exist.
    pub async fn open(root: &Path, customer: &str, name: &str, ob_command: Option<PathBuf>) -> Result<Self, VaultError> {
        if customer.is_empty() || customer.starts_with('.') || customer.contains(['/', '\\', '\0']) {
            return Err(VaultError::NotConfigured("the calling customer's id cannot name a directory".to_owned()));
        }
        let path = root.join(customer).join(name);
        let missing = || {
            VaultError::NotConfigured(format!(
                "the vault `{name}` is not set up on this gateway: the operator must sync it to <SQUAREMCP_OBSIDIAN_ROOT>/<your customer id>/{name}"
            ))
        };
        let root = tokio::task::spawn_blocking(move || path.canonicalize().ok().filter(|root| root.is_dir()))
            .await
            .map_err(joined)?
            .ok_or_else(missing)?;
        Ok(Self { root, ob_command })
    }

    /// The file for `path`, refused when it (or a parent) is a symlink leading out of the vault.
    fn resolve(&self, path: &NotePath) -> Result<PathBuf, VaultError> {
        let full = self.root.join(path.as_str());
        let mut existing = full.as_path();
        while !existing.exists() {
            existing = existing.parent().unwrap_or(&self.root);
        }
        let canonical = existing.canonicalize().map_err(|e| io_error(path.as_str(), &e))?;
        if !canonical.starts_with(&self.root) {
            return Err(VaultError::Refused(format!("`{}` leads out of the vault through a symbolic link", path.as_str())));
        }
        if canonical.components().skip(self.root.components().count()).any(|c| c.as_os_str() == ".obsidian") {
            return Err(VaultError::Refused(format!("`{}` leads into `.obsidian/`", path.as_str())));
        }
        Ok(full)
    }

    fn read_blocking(&self, path: &NotePath) -> Result<Option<Note>, VaultError> {
        let full = self.resolve(path)?;
        let metadata = match std::fs::metadata(&full) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(path.as_str(), &e)),
        };
        if !metadata.is_file() {
            return Err(VaultError::Refused(format!("`{}` is a folder, not a note", path.as_str())));
        }
        if metadata.len() > MAX_NOTE_BYTES {
            return Err(VaultError::TooLarge(path.as_str().to_owned()));
        }
        let content = std::fs::read(&full).map_err(|e| io_error(path.as_str(), &e))?;
        Ok(Some(Note { version: version_of(&content), content, modified: metadata.modified().ok().and_then(rfc3339) }))
    }

    fn write_blocking(&self, path: &NotePath, content: &[u8], condition: &Condition) -> Result<String, VaultError> {
        let full = self.resolve(path)?;
        if std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(VaultError::Refused(format!("`{}` is a symbolic link: edit the note it points to", path.as_str())));
        }
        let parent = full.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|e| io_error(path.as_str(), &e))?;
        // Created folders are inside the vault (resolve checked the deepest existing one), but a
        // link may have been swapped in meanwhile: check again.
        self.resolve(path)?;
        let check = |expected: &Condition| -> Result<(), VaultError> {
            let current = self.read_blocking(path)?;
            match (expected, current) {
                (Condition::Absent, None) => Ok(()),
                (Condition::Version(wanted), Some(note)) if note.version == *wanted => Ok(()),
                _ => Err(VaultError::Conflict(path.as_str().to_owned())),
            }
        };
        check(condition)?;
        let temp = temp_path(&full);
        let written = (|| {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
            file.write_all(content)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io_error(path.as_str(), &e));
        }
        let placed = match condition {
            // A hard link fails if the name exists: an atomic create-if-absent.
            Condition::Absent => std::fs::hard_link(&temp, &full).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists { VaultError::Conflict(path.as_str().to_owned()) } else { io_error(path.as_str(), &e) }
            }),
            // Checked again just before the rename, which replaces the note atomically. A write
            // landing between this check and the rename (microseconds) cannot be excluded on a
            // plain filesystem; everything before it is caught.
            Condition::Version(_) => check(condition).and_then(|()| std::fs::rename(&temp, &full).map_err(|e| io_error(path.as_str(), &e))),
        };
        let _ = std::fs::remove_file(&temp);
        placed.map(|()| version_of(content))
    }

    fn list_blocking(&self) -> (Vec<Entry>, bool) {
        let mut entries = Vec::new();
        let mut folders = vec![(self.root.clone(), String::new())];
        while let Some((folder, relative)) = folders.pop() {
            let Ok(read) = std::fs::read_dir(&folder) else { continue };
            for item in read.flatten() {
                let name = item.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let path = if relative.is_empty() { name.clone() } else { format!("{relative}/{name}") };
                let Ok(kind) = item.file_type() else { continue };
                // Symbolic links are not followed while listing (no loops, no escapes); a
                // linked note is still readable by path when it stays inside the vault.
                if kind.is_dir() {
                    folders.push((item.path(), path));
                } else if kind.is_file() {
                    let metadata = item.metadata().ok();
                    entries.push(Entry {
                        path,
                        size: metadata.as_ref().map_or(0, std::fs::Metadata::len),
                        modified: metadata.and_then(|m| m.modified().ok()).and_then(rfc3339),
                    });
                    if entries.len() >= MAX_LISTED {
                        return (entries, false);
                    }
                }
            }
        }
        (entries, true)
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `.<name>.squaremcp-<pid>-<n>.tmp` next to the note: a dot-file, so searches and syncs that
/// skip hidden files ignore it while it exists.
fn temp_path(full: &Path) -> PathBuf {
    let name = full.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    full.with_file_name(format!(".{name}.squaremcp-{}-{n}-{nanos}.tmp", std::process::id()))
}

/// A note's version on disk: the first 128 bits of its SHA-256, hex.
pub(super) fn version_of(content: &[u8]) -> String {
    Sha256::digest(content)[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn io_error(path: &str, error: &std::io::Error) -> VaultError {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => VaultError::Permission(format!("the gateway may not access `{path}` in the vault")),
        _ => VaultError::Transient(format!("the vault could not be accessed at `{path}` ({})", error.kind())),
    }
}

fn joined(error: tokio::task::JoinError) -> VaultError {
    VaultError::Transient(format!("the vault task failed ({error})"))
}

#[async_trait]
impl Vault for Directory {
    async fn list(&self) -> Result<(Vec<Entry>, bool), VaultError> {
        let this = Self { root: self.root.clone(), ob_command: None };
        tokio::task::spawn_blocking(move || this.list_blocking()).await.map_err(joined)
    }

    async fn read(&self, path: &NotePath) -> Result<Option<Note>, VaultError> {
        let (this, path) = (Self { root: self.root.clone(), ob_command: None }, path.clone());
        tokio::task::spawn_blocking(move || this.read_blocking(&path)).await.map_err(joined)?
    }

    async fn write(&self, path: &NotePath, content: &[u8], condition: &Condition) -> Result<String, VaultError> {
        let this = Self { root: self.root.clone(), ob_command: None };
        let (path, content, condition) = (path.clone(), content.to_vec(), condition.clone());
        tokio::task::spawn_blocking(move || this.write_blocking(&path, &content, &condition)).await.map_err(joined)?
    }

    async fn sync_status(&self) -> Result<Value, VaultError> {
        let (entries, complete) = self.list().await?;
        let notes: Vec<&Entry> = entries.iter().filter(|e| is_note(&e.path)).collect();
        let last_change = entries.iter().filter_map(|e| e.modified.as_deref()).max();
        let mut status = json!({ "backend": "directory", "note_count": notes.len(), "file_count": entries.len(),
            "listing_complete": complete, "last_change": last_change });
        if let Some(ob) = &self.ob_command {
            let output = run(ob, &["sync-status", "--json"], &self.root).await?;
            status["source"] = json!("ob sync-status");
            status["ob"] = serde_json::from_str::<Value>(&output).unwrap_or(Value::String(output));
        } else if self.root.join(".git").exists() {
            status["source"] = json!("git");
            status["git"] = git_status(&self.root).await?;
        } else {
            status["source"] = json!("files");
        }
        Ok(status)
    }
}

/// Runs `program` (no shell) in `dir` with a timeout; its standard output, or why not.
async fn run(program: &Path, arguments: &[&str], dir: &Path) -> Result<String, VaultError> {
    let name = program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let child = tokio::process::Command::new(program)
        .args(arguments)
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| VaultError::Transient(format!("`{name}` did not answer within {} s", COMMAND_TIMEOUT.as_secs())))?
        .map_err(|e| VaultError::NotSupported(format!("`{name}` could not be run on the gateway ({})", e.kind())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or("").chars().take(200).collect::<String>();
        return Err(VaultError::Upstream(format!("`{name} {}` failed: {first}", arguments.join(" "))));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `git status --porcelain=v2 --branch` summarised, and the last commit's time.
async fn git_status(dir: &Path) -> Result<Value, VaultError> {
    let git = Path::new("git");
    let porcelain = run(git, &["status", "--porcelain=v2", "--branch"], dir).await?;
    let (mut branch, mut upstream, mut ahead, mut behind) = (None, None, 0_i64, 0_i64);
    let (mut changed, mut untracked, mut conflicted) = (Vec::new(), 0_usize, 0_usize);
    for line in porcelain.lines() {
        if let Some(head) = line.strip_prefix("# branch.head ") {
            branch = Some(head.to_owned());
        } else if let Some(name) = line.strip_prefix("# branch.upstream ") {
            upstream = Some(name.to_owned());
        } else if let Some(ab) = line.strip_prefix("# branch.ab ") {
            let mut parts = ab.split(' ');
            ahead = parts.next().and_then(|a| a.trim_start_matches('+').parse().ok()).unwrap_or(0);
            behind = parts.next().and_then(|b| b.trim_start_matches('-').parse().ok()).unwrap_or(0);
        } else if line.starts_with("? ") {
            untracked += 1;
        } else if line.starts_with("u ") {
            conflicted += 1;
        } else if line.starts_with("1 ") || line.starts_with("2 ") {
            // `1 XY sub mH mI mW hH hI path` (and `2 …` adds a score and the original path).
            let fields = if line.starts_with("1 ") { 8 } else { 9 };
            if let Some(path) = line.splitn(fields + 1, ' ').nth(fields) {
                changed.push(path.split('\t').next().unwrap_or(path).to_owned());
            }
        }
    }
    let last_commit = run(git, &["log", "-1", "--format=%cI"], dir).await.ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let total_changed = changed.len();
    changed.truncate(20);
    Ok(json!({ "branch": branch, "upstream": upstream, "ahead": ahead, "behind": behind, "changed": total_changed,
        "changed_paths": changed, "untracked": untracked, "conflicted": conflicted, "clean": total_changed + untracked + conflicted == 0,
        "last_commit": last_commit }))
}
