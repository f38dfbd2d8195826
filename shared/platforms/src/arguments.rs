//! Request bodies built from tool arguments, shared by every HTTP platform.
//!
//! The gateway has already validated the arguments against the tool's input schema; what is left
//! is to send exactly the arguments the caller gave and nothing else.

use serde_json::{Map, Value};

/// A JSON object body holding only the parameters that were given.
#[derive(Debug, Default)]
pub(crate) struct RequestBody(Map<String, Value>);

impl RequestBody {
    /// Copies each named argument under the same name, when present.
    pub(crate) fn copy(mut self, arguments: &Map<String, Value>, names: &[&str]) -> Self {
        for &name in names {
            if let Some(value) = arguments.get(name) {
                self.0.insert(name.to_owned(), normalized(value));
            }
        }
        self
    }

    /// Sets `key` to `build(argument)` when the argument `name` is present: for parameters whose
    /// API shape differs from the tool's (e.g. a flat id that the API wants nested).
    pub(crate) fn map(mut self, arguments: &Map<String, Value>, name: &str, key: &str, build: impl FnOnce(Value) -> Value) -> Self {
        if let Some(value) = arguments.get(name) {
            self.0.insert(key.to_owned(), build(normalized(value)));
        }
        self
    }

    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_owned(), value);
    }

    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// The schema check accepts `5.0` as an integer; APIs with strict integer parsing may not, so
/// whole floats are sent as integers.
fn normalized(value: &Value) -> Value {
    const EXACT_F64_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53
    match value.as_f64() {
        Some(x) if value.is_f64() && x.fract() == 0.0 && x.abs() <= EXACT_F64_INTEGER => Value::from(x as i64),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn arguments(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn copies_only_present_arguments_and_whole_floats_become_integers() {
        let given = arguments(json!({"a": 1, "b": 2.0, "c": "x", "d": 1.5}));
        let body = RequestBody::default().copy(&given, &["a", "b", "d", "missing"]).into_map();
        assert_eq!(Value::Object(body), json!({"a": 1, "b": 2, "d": 1.5}));
    }

    #[test]
    fn map_reshapes_a_present_argument_and_skips_an_absent_one() {
        let given = arguments(json!({"reply_to": 7}));
        let body = RequestBody::default()
            .map(&given, "reply_to", "reply_parameters", |id| json!({"message_id": id}))
            .map(&given, "absent", "never", |v| v)
            .into_map();
        assert_eq!(Value::Object(body), json!({"reply_parameters": {"message_id": 7}}));
    }
}
