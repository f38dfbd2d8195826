//! Search over a vault's notes with a bounded cost: a time budget, a byte budget, a per-note
//! size cap, a cap on matches, and a size-limited regex (regex-lite: no backtracking blow-up).

use std::time::{Duration, Instant};


use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::paths::{NotePath, is_note};
use super::vault::{MAX_NOTE_BYTES, Vault, VaultError};

/// The caps of one search.
#[derive(Clone, Copy, Debug)]
pub(super) struct Caps {
    pub time: Duration,
    pub bytes: u64,
    /// Notes read at once (S3: parallel GETs).
    pub parallel: usize,
}

/// Notes read at once in a search (S3: parallel GETs).
pub(super) const PARALLEL_READS: usize = 16;

/// The largest compiled regex (regex-lite's `size_limit`).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Characters of a matching line returned (and of each context line).
const LINE_CHARS: usize = 300;

pub(super) enum Matcher {
    /// Lowercased when the search ignores case.
    Substring { needle: String, case_sensitive: bool },
    Regex(regex_lite::Regex),
}

impl Matcher {
    pub fn new(query: &str, regex: bool, case_sensitive: bool) -> Result<Self, String> {
        if !regex {
            let needle = if case_sensitive { query.to_owned() } else { query.to_lowercase() };
            return Ok(Self::Substring { needle, case_sensitive });
        }
        regex_lite::RegexBuilder::new(query)
            .case_insensitive(!case_sensitive)
            .size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(50)
            .build()
            .map(Self::Regex)
            .map_err(|e| format!("the regular expression is not usable: {e}"))
    }

    fn matches(&self, line: &str) -> bool {
        match self {
            Self::Substring { needle, case_sensitive: true } => line.contains(needle.as_str()),
            Self::Substring { needle, case_sensitive: false } => line.to_lowercase().contains(needle.as_str()),
            Self::Regex(regex) => regex.is_match(line),
        }
    }
}

fn clip(line: &str) -> String {
    match line.char_indices().nth(LINE_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

async fn read_one(vault: &dyn Vault, path: NotePath) -> (NotePath, Result<Option<super::vault::Note>, VaultError>) {
    let read = vault.read(&path).await;
    (path, read)
}

/// Searches the notes under `folder` (every note when empty), in path order.
pub(super) async fn search(vault: &dyn Vault, matcher: &Matcher, folder: &str, limit: usize, context: usize, caps: Caps) -> Result<Value, VaultError> {
    let started = Instant::now();
    let (entries, complete) = vault.list().await?;
    let folder = folder.trim_matches('/');
    let mut notes: Vec<_> = entries
        .into_iter()
        .filter(|e| is_note(&e.path))
        .filter(|e| folder.is_empty() || e.path.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/')))
        .collect();
    notes.sort_by(|a, b| a.path.cmp(&b.path));
    let total = notes.len();
    let (mut skipped_large, mut bytes, mut scanned) = (0_usize, 0_u64, 0_usize);
    let mut stopped: Option<&str> = if complete { None } else { Some("listing") };
    let wanted: Vec<NotePath> = notes
        .iter()
        .filter(|e| {
            let large = e.size > MAX_NOTE_BYTES;
            skipped_large += usize::from(large);
            !large
        })
        .filter_map(|e| NotePath::parse(&e.path).ok())
        .collect();
    let mut reads = futures_util::stream::iter(wanted.into_iter().map(|path| read_one(vault, path))).buffered(caps.parallel.max(1));
    let mut matches = Vec::new();
    while let Some((path, read)) = reads.next().await {
        if started.elapsed() > caps.time {
            stopped = Some("time");
            break;
        }
        let note = match read {
            Ok(Some(note)) => note,
            // Deleted or grown since the listing, or unreadable: skipped, not fatal.
            Ok(None) | Err(VaultError::TooLarge(_) | VaultError::NotFound(_) | VaultError::Refused(_)) => continue,
            Err(other) => return Err(other),
        };
        bytes += note.content.len() as u64;
        if bytes > caps.bytes {
            stopped = Some("bytes");
            break;
        }
        scanned += 1;
        let text = String::from_utf8_lossy(&note.content);
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if !matcher.matches(line) {
                continue;
            }
            let before = lines[index.saturating_sub(context)..index].iter().map(|l| clip(l)).collect::<Vec<_>>();
            let after = lines[index + 1..(index + 1 + context).min(lines.len())].iter().map(|l| clip(l)).collect::<Vec<_>>();
            matches.push(json!({ "path": path.as_str(), "line": index + 1, "text": clip(line), "before": before, "after": after }));
            if matches.len() >= limit {
                break;
            }
        }
        if matches.len() >= limit {
            stopped = Some("limit");
            break;
        }
    }
    Ok(json!({
        "matches": matches,
        "notes_total": total,
        "notes_scanned": scanned,
        "skipped_too_large": skipped_large,
        "truncated": stopped.is_some(),
        "stopped_by": stopped,
        "elapsed_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}
