//! Typed credential documents: each platform parses the stored JSON once per call into its own
//! type. Errors name the field and what is wrong with it, never its value: a malformed secret is
//! usually a real secret with a typo.

use serde_json::{Map, Value};
use squaremcp_core::tool::{FailureKind, ToolFailure};

/// Why a credential document cannot be used. Never carries a value from the document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the credential must be a JSON object like {example}")]
    NotAnObject { example: &'static str },
    #[error("`{field}` is missing: {hint}")]
    Missing { field: &'static str, hint: &'static str },
    #[error("unknown key `{field}`: this credential has only {known}")]
    Unknown { field: String, known: String },
    #[error("`{field}` {problem}")]
    Malformed { field: &'static str, problem: String },
}

/// A platform's credential, parsed from the stored JSON document.
pub trait CredentialDocument: Sized + Send + Sync {
    /// The document's shape for help texts, e.g. `{"bot_token": "…"}`. Must parse.
    const EXAMPLE: &'static str;

    fn parse(document: &Value) -> Result<Self, CredentialError>;

    /// Every secret string in it, so that text bound for a person or a log can be scrubbed.
    fn secrets(&self) -> Vec<&str>;
}

/// The tool failure for a stored document that does not parse: nothing was sent.
pub fn unusable(platform: &str, error: &CredentialError) -> ToolFailure {
    ToolFailure::new(
        FailureKind::NotConfigured,
        format!("The stored {platform} credential is not usable: {error}. Store it again."),
    )
}

/// The fields a Connect flow writes for a platform that signs in with OAuth (the tools read only
/// the access token; the gateway renews it with the rest).
pub const OAUTH_FIELDS: [&str; 5] = ["access_token", "refresh_token", "expires_at", "scopes", "account"];

/// The user access token of an OAuth connection, as `Authorization: Bearer`. No `Debug`: nothing
/// can print it.
pub struct OAuthUserToken {
    token: String,
    authorization: reqwest::header::HeaderValue,
}

impl OAuthUserToken {
    /// Reads a Connect document; `hint` says what to do when the token is missing.
    pub fn parse(document: &Value, example: &'static str, hint: &'static str) -> Result<Self, CredentialError> {
        let token = Fields::of(document, &OAUTH_FIELDS, example)?.string("access_token", hint)?;
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| CredentialError::Malformed { field: "access_token", problem: "cannot go in an HTTP header".to_owned() })?;
        authorization.set_sensitive(true);
        Ok(Self { token: token.to_owned(), authorization })
    }

    /// `Bearer <token>`, marked sensitive.
    pub fn authorization(&self) -> reqwest::header::HeaderValue {
        self.authorization.clone()
    }

    pub fn token(&self) -> &str {
        &self.token
    }
}

/// The fields of a credential document, read one by one with precise errors.
pub struct Fields<'a> {
    fields: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The document as an object whose keys are all in `known`.
    pub fn of(document: &'a Value, known: &[&str], example: &'static str) -> Result<Self, CredentialError> {
        let fields = document.as_object().ok_or(CredentialError::NotAnObject { example })?;
        if let Some(unknown) = fields.keys().find(|key| !known.contains(&key.as_str())) {
            let known = known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            return Err(CredentialError::Unknown { field: unknown.clone(), known: format!("{known}, like {example}") });
        }
        Ok(Self { fields })
    }

    /// A required string; `hint` tells the person where to find it.
    pub fn string(&self, field: &'static str, hint: &'static str) -> Result<&'a str, CredentialError> {
        self.optional_string(field)?.ok_or(CredentialError::Missing { field, hint })
    }

    pub fn optional_string(&self, field: &'static str) -> Result<Option<&'a str>, CredentialError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim() != text => {
                Err(CredentialError::Malformed { field, problem: "has spaces or line breaks around it; remove them".to_owned() })
            }
            Some(Value::String(text)) if text.is_empty() => {
                Err(CredentialError::Malformed { field, problem: "is empty".to_owned() })
            }
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(CredentialError::Malformed { field, problem: "must be a string".to_owned() }),
        }
    }

    /// An optional whole number between `min` and `max`.
    pub fn optional_integer(&self, field: &'static str, min: u64, max: u64) -> Result<Option<u64>, CredentialError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_u64() {
                Some(number) if (min..=max).contains(&number) => Ok(Some(number)),
                _ => Err(CredentialError::Malformed { field, problem: format!("must be a whole number from {min} to {max}") }),
            },
        }
    }

    /// An optional nested object whose keys are all in `known`.
    pub fn optional_object(&self, field: &'static str, known: &[&str], example: &'static str) -> Result<Option<Fields<'a>>, CredentialError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value @ Value::Object(_)) => Fields::of(value, known, example).map(Some),
            Some(_) => Err(CredentialError::Malformed { field, problem: format!("must be an object like {example}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const EXAMPLE: &str = r#"{"token": "abc"}"#;

    #[test]
    fn each_problem_names_the_field_and_never_the_value() {
        let secret = "s3cr3t-value-that-must-not-show";
        let cases = [
            (json!(secret), "must be a JSON object"),
            (json!({}), "`token` is missing: from the portal"),
            (json!({"token": 5}), "`token` must be a string"),
            (json!({"token": format!(" {secret}")}), "`token` has spaces"),
            (json!({"token": ""}), "`token` is empty"),
            (json!({"token": secret, "other": secret}), "unknown key `other`: this credential has only `token`"),
        ];
        for (document, expected) in cases {
            let error = Fields::of(&document, &["token"], EXAMPLE)
                .and_then(|fields| fields.string("token", "from the portal").map(str::to_owned))
                .expect_err(&document.to_string());
            let message = error.to_string();
            assert!(message.contains(expected), "{document}: {message}");
            assert!(!message.contains(secret), "{document}: the message repeats the value: {message}");
        }
    }

    #[test]
    fn a_good_document_gives_its_fields() {
        let document = json!({"token": "abc"});
        let fields = Fields::of(&document, &["token", "extra"], EXAMPLE).expect("an object");
        assert_eq!(fields.string("token", "").expect("present"), "abc");
        assert_eq!(fields.optional_string("extra").expect("absent is fine"), None);
        let failure = unusable("Discord", &CredentialError::Missing { field: "bot_token", hint: "copy it" });
        assert_eq!(failure.kind, FailureKind::NotConfigured);
        assert!(failure.message.contains("`bot_token` is missing") && failure.message.ends_with("Store it again."));
    }
}
