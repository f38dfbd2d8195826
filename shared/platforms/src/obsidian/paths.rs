//! Vault-relative note paths, checked before any backend sees them.

use thiserror::Error;

/// Why a path is refused. The path itself is repeated (it is the caller's own argument).
#[derive(Debug, Error, PartialEq, Eq)]
pub(super) enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("`{0}` is absolute: give a path inside the vault, like `Folder/Note.md`")]
    Absolute(String),
    #[error("`{0}` contains `..`, `.`, an empty segment, a backslash or a NUL: give a plain path inside the vault")]
    Traversal(String),
    #[error("`{0}` is inside `.obsidian/`, Obsidian's own settings and plugins, which these tools never touch")]
    Internals(String),
    #[error("`{0}` is not a Markdown note (`.md`)")]
    NotMarkdown(String),
    #[error("the path is longer than 1024 bytes")]
    TooLong,
}

/// A checked vault-relative path of a Markdown note: `/`-separated segments, none empty, `.`
/// or `..`; no NUL or backslash; not absolute; not under `.obsidian/`; ending in `.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NotePath(String);

impl NotePath {
    /// Checks `text`; a path without an extension gets `.md` (Obsidian links leave it out).
    pub fn parse(text: &str) -> Result<Self, PathError> {
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        if text.len() > 1024 {
            return Err(PathError::TooLong);
        }
        let bytes = text.as_bytes();
        let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
        if text.starts_with('/') || text.starts_with('~') || drive {
            return Err(PathError::Absolute(text.to_owned()));
        }
        if text.contains(['\0', '\\']) || text.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(PathError::Traversal(text.to_owned()));
        }
        if text.split('/').any(|s| s.eq_ignore_ascii_case(".obsidian")) {
            return Err(PathError::Internals(text.to_owned()));
        }
        let last = text.rsplit('/').next().unwrap_or(text);
        let path = match last.rsplit_once('.') {
            Some((_, extension)) if extension.eq_ignore_ascii_case("md") => text.to_owned(),
            Some((stem, extension)) if !stem.is_empty() && extension.len() <= 5 && !extension.contains(' ') => {
                return Err(PathError::NotMarkdown(text.to_owned()));
            }
            _ => format!("{text}.md"),
        };
        Ok(Self(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a vault-relative file is searched and counted as a note: Markdown, outside
/// `.obsidian/`, `.trash/` and every other dot-folder (`.git`, `.stfolder`).
pub(super) fn is_note(path: &str) -> bool {
    let mut segments = path.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_some() && segment.starts_with('.') {
            return false;
        }
        if segments.peek().is_none() {
            return segment.len() > 3 && segment.to_ascii_lowercase().ends_with(".md") && !segment.starts_with('.');
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_and_get_md() {
        assert_eq!(NotePath::parse("Daily/2026-11-29").map(|p| p.0), Ok("Daily/2026-11-29.md".to_owned()));
        assert_eq!(NotePath::parse("Über uns.md").map(|p| p.0), Ok("Über uns.md".to_owned()));
        assert_eq!(NotePath::parse("v1.2 notes").map(|p| p.0), Ok("v1.2 notes.md".to_owned()));
    }

    #[test]
    fn escapes_and_internals_are_refused() {
        for bad in ["../x.md", "a/../../x.md", "/etc/passwd", "C:/x.md", "a//b.md", "./a.md", "a\\..\\b.md", "a\0.md",
            ".obsidian/app.json", "x/.obsidian/plugins/p/data.json", "~/x.md", "", "image.png"] {
            assert!(NotePath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn notes_exclude_internals_trash_and_other_files() {
        assert!(is_note("a/b.md") && is_note("x.MD"));
        for not in [".obsidian/x.md", ".trash/x.md", "a/.git/x.md", "img.png", ".md", "a/.hidden.md"] {
            assert!(!is_note(not), "{not}");
        }
    }
}
