//! Checks tool arguments against the subset of JSON Schema that tool definitions use:
//! `type` (one or a list), `properties`, `required`, `additionalProperties: false`, `enum`,
//! `minLength`/`maxLength`, `minimum`/`maximum`, `items`, `minItems`/`maxItems`.
//! Small on purpose: a full validator would add more to the binary than all tools together.

use serde_json::Value;

/// Returns a message naming the first offending argument, e.g. "`chat_id` must be an integer or a string".
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "")
}

fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else { return Ok(()) };
    let name = if path.is_empty() { "the arguments".to_owned() } else { format!("`{path}`") };

    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| has_type(value, t)) {
            let wanted: Vec<String> = allowed.iter().map(|t| article(t)).collect();
            return Err(format!("{name} must be {}, not {}", wanted.join(" or "), describe(value)));
        }
    }

    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let shown: Vec<String> = options.iter().map(Value::to_string).collect();
        return Err(format!("{name} must be one of {}", shown.join(", ")));
    }

    match value {
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                return Err(format!("{name} must be at least {min} characters long"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                return Err(format!("{name} must be at most {max} characters long (it has {len})"));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                return Err(format!("{name} must be at least {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                return Err(format!("{name} must be at most {max}"));
            }
        }
        Value::Array(items) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                return Err(format!("{name} must have at least {min} items"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                return Err(format!("{name} must have at most {max} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{}[{i}]", path_or(path, "arguments")))?;
                }
            }
        }
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for key in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(key) {
                        return Err(format!("`{}` is required", join(path, key)));
                    }
                }
            }
            for (key, item) in map {
                match properties.and_then(|p| p.get(key)) {
                    Some(prop_schema) => check(prop_schema, item, &join(path, key))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        let known: Vec<&str> = properties.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                        return Err(format!(
                            "unknown argument `{}`; expected {}",
                            join(path, key),
                            if known.is_empty() { "no arguments".to_owned() } else { known.join(", ") }
                        ));
                    }
                    None => {}
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
    Ok(())
}

fn has_type(value: &Value, wanted: &str) -> bool {
    match wanted {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn article(t: &str) -> String {
    match t {
        "object" | "array" | "integer" => format!("an {t}"),
        "null" => "null".to_owned(),
        _ => format!("a {t}"),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn path_or<'a>(path: &'a str, fallback: &'a str) -> &'a str {
    if path.is_empty() { fallback } else { path }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "chat_id": {"type": ["integer", "string"]},
                "text": {"type": "string", "minLength": 1, "maxLength": 5},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "mode": {"type": "string", "enum": ["HTML", "MarkdownV2"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "nested": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}
            },
            "required": ["chat_id"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_valid_arguments() {
        let ok = json!({"chat_id": "@news", "text": "hi", "limit": 5, "mode": "HTML", "tags": ["a"], "nested": {"id": 1}});
        assert_eq!(validate(&schema(), &ok), Ok(()));
        assert_eq!(validate(&schema(), &json!({"chat_id": 42})), Ok(()));
    }

    #[test]
    fn names_the_offending_argument() {
        let cases = [
            (json!({}), "`chat_id` is required"),
            (json!({"chat_id": true}), "`chat_id` must be an integer or a string, not a boolean"),
            (json!({"chat_id": 1, "text": ""}), "`text` must be at least 1 characters long"),
            (json!({"chat_id": 1, "text": "toolong"}), "`text` must be at most 5 characters long (it has 7)"),
            (json!({"chat_id": 1, "limit": 0}), "`limit` must be at least 1"),
            (json!({"chat_id": 1, "limit": 2.5}), "`limit` must be an integer, not a number"),
            (json!({"chat_id": 1, "mode": "md"}), "`mode` must be one of \"HTML\", \"MarkdownV2\""),
            (json!({"chat_id": 1, "tags": [1]}), "`tags[0]` must be a string, not a number"),
            (json!({"chat_id": 1, "tags": ["a", "b", "c"]}), "`tags` must have at most 2 items"),
            (json!({"chat_id": 1, "nested": {}}), "`nested.id` is required"),
            (json!([1]), "the arguments must be an object, not an array"),
        ];
        for (value, message) in cases {
            assert_eq!(validate(&schema(), &value), Err(message.to_owned()), "{value}");
        }
        let unknown = validate(&schema(), &json!({"chat_id": 1, "txt": "x"})).expect_err("unknown key");
        assert!(unknown.starts_with("unknown argument `txt`; expected "), "{unknown}");
    }
}
