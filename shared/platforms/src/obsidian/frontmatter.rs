//! Front matter: the YAML block between `---` lines at the top of a note, split from the body and
//! parsed for its common shapes (scalars, `[a, b]` and `- item` lists). Anything fancier (nested
//! maps, multi-line strings) is kept as text; the raw block is always returned as well.

use serde_json::{Map, Value};

/// `(raw front matter, body)`; `None` when the note has none.
pub(super) fn split(text: &str) -> (Option<&str>, &str) {
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare == "..." {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, text)
}

/// The raw block as a JSON object, as far as its shapes are known.
pub(super) fn parse(raw: &str) -> Value {
    let mut map = Map::new();
    let mut list_key: Option<String> = None;
    for line in raw.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let (Some(key), Some(item)) = (&list_key, trimmed.strip_prefix("- ").or_else(|| (trimmed == "-").then_some(""))) {
            if let Some(Value::Array(items)) = map.get_mut(key) {
                items.push(scalar(item));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A nested block: kept only in the raw text.
            continue;
        }
        list_key = None;
        let Some((key, value)) = line.split_once(':') else { continue };
        let (key, value) = (unquote(key.trim()).to_owned(), value.trim());
        if value.is_empty() {
            map.insert(key.clone(), Value::Array(Vec::new()));
            list_key = Some(key);
        } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            let items = inner.split(',').map(str::trim).filter(|i| !i.is_empty()).map(scalar).collect();
            map.insert(key, Value::Array(items));
        } else {
            map.insert(key, scalar(value));
        }
    }
    // `key:` with nothing under it is null, not an empty list.
    for value in map.values_mut() {
        if matches!(value, Value::Array(items) if items.is_empty()) {
            *value = Value::Null;
        }
    }
    Value::Object(map)
}

fn unquote(text: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner;
        }
    }
    text
}

fn scalar(text: &str) -> Value {
    let text = text.trim();
    if text.starts_with(['"', '\'']) {
        return Value::String(unquote(text).to_owned());
    }
    match text {
        "true" | "True" | "yes" => Value::Bool(true),
        "false" | "False" | "no" => Value::Bool(false),
        "null" | "~" | "" => Value::Null,
        _ => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn front_matter_is_split_and_parsed() {
        let note = "---\ntitle: \"Plan: 2027\"\ntags: [work, ideas]\naliases:\n  - P27\n  - Plan\ndraft: true\npriority: 2\nempty:\n---\n# Body\ntext\n";
        let (raw, body) = split(note);
        assert_eq!(body, "# Body\ntext\n");
        let parsed = parse(raw.expect("front matter"));
        assert_eq!(parsed, json!({"title": "Plan: 2027", "tags": ["work", "ideas"], "aliases": ["P27", "Plan"], "draft": true,
            "priority": 2, "empty": null}));
        assert_eq!(split("# No front matter\n---\n"), (None, "# No front matter\n---\n"));
        assert_eq!(split("---\nunterminated: yes\n"), (None, "---\nunterminated: yes\n"));
    }
}
