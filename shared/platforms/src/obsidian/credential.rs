//! The Obsidian credential document: a directory vault by name, or an S3 bucket and prefix with
//! keys. No message here repeats a value, and the type has no `Debug`.

use serde_json::Value;

use super::CREDENTIAL_EXAMPLE;
use crate::kit::{CredentialDocument, CredentialError, Fields};

const KNOWN: &[&str] = &["vault", "bucket", "prefix", "region", "endpoint", "access_key_id", "secret_access_key"];

/// An S3 (or S3-compatible) vault.
pub(super) struct S3Credential {
    pub bucket: String,
    /// Normalised: empty, or segments ending with `/`.
    pub prefix: String,
    pub region: String,
    /// `scheme://host[:port]` of an S3-compatible store; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary keys (the deployment's bucket) come with a session token.
    pub session_token: Option<String>,
}

pub(super) enum VaultCredential {
    /// `<root>/<customer id>/<name>` on the gateway's disk, or `<customer id>/<name>/` in the
    /// deployment's bucket where the gateway keeps no directories (the Lambdas).
    Directory { name: String },
    S3(S3Credential),
}

impl CredentialDocument for VaultCredential {
    const EXAMPLE: &'static str = CREDENTIAL_EXAMPLE;

    fn parse(document: &Value) -> Result<Self, CredentialError> {
        let fields = Fields::of(document, KNOWN, CREDENTIAL_EXAMPLE)?;
        if let Some(name) = fields.optional_string("vault")? {
            for other in &KNOWN[1..] {
                if fields.optional_string(other).ok().flatten().is_some() {
                    return Err(CredentialError::Malformed {
                        field: "vault",
                        problem: "names a directory vault; it cannot be combined with S3 fields".to_owned(),
                    });
                }
            }
            if !vault_name_ok(name) {
                return Err(CredentialError::Malformed {
                    field: "vault",
                    problem: "must be 1 to 100 letters, digits, spaces, `.`, `_` or `-`, not starting with `.`".to_owned(),
                });
            }
            return Ok(Self::Directory { name: name.to_owned() });
        }
        let bucket = fields.string("bucket", "the S3 bucket's name (or `vault` for a directory vault on the gateway)")?;
        if !bucket_ok(bucket) {
            return Err(CredentialError::Malformed { field: "bucket", problem: "is not an S3 bucket name (3-63 of a-z 0-9 . -)".to_owned() });
        }
        let prefix = normalize_prefix(fields.optional_string("prefix")?.unwrap_or(""))
            .ok_or_else(|| CredentialError::Malformed { field: "prefix", problem: "must be a relative key prefix without `.`/`..` segments".to_owned() })?;
        let region = fields.string("region", "the bucket's region, like eu-west-1 (us-east-1 for most S3-compatible stores)")?;
        if region.len() > 40 || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(CredentialError::Malformed { field: "region", problem: "is not a region name like eu-west-1".to_owned() });
        }
        let endpoint = match fields.optional_string("endpoint")? {
            None => None,
            Some(url) => Some(crate::kit::origin("https://s3.amazonaws.com", Some(url)).map_err(|_| CredentialError::Malformed {
                field: "endpoint",
                problem: "must be only a scheme, host and port, like https://s3.example.com".to_owned(),
            })?),
        };
        Ok(Self::S3(S3Credential {
            bucket: bucket.to_owned(),
            prefix,
            region: region.to_owned(),
            endpoint,
            access_key_id: fields.string("access_key_id", "the access key id of a key allowed to read and write the prefix")?.to_owned(),
            secret_access_key: fields.string("secret_access_key", "the secret of that access key")?.to_owned(),
            session_token: None,
        }))
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            Self::Directory { .. } => Vec::new(),
            Self::S3(s3) => {
                let mut secrets = vec![s3.secret_access_key.as_str(), s3.access_key_id.as_str()];
                secrets.extend(s3.session_token.as_deref());
                secrets
            }
        }
    }
}

fn vault_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'))
}

fn bucket_ok(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len()) && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// `""` or `a/b/` (slashes around it dropped): no empty, `.` or `..` segment, no NUL or backslash.
fn normalize_prefix(prefix: &str) -> Option<String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Some(String::new());
    }
    if trimmed.len() > 512 || trimmed.contains(['\0', '\\']) {
        return None;
    }
    if trimmed.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return None;
    }
    Some(format!("{trimmed}/"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_shapes_parse_and_mixtures_are_refused() {
        assert!(matches!(VaultCredential::parse(&json!({"vault": "My Notes"})), Ok(VaultCredential::Directory { .. })));
        let Ok(VaultCredential::S3(s3)) = VaultCredential::parse(&json!({"bucket": "notes", "prefix": "/a/b", "region": "eu-west-1",
            "endpoint": "http://127.0.0.1:9000", "access_key_id": "k", "secret_access_key": "s"})) else { panic!("an S3 vault") };
        assert_eq!(s3.prefix, "a/b/");
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        for bad in [
            json!({"vault": "../x"}),
            json!({"vault": ".obsidian"}),
            json!({"vault": "a/b"}),
            json!({"vault": "x", "bucket": "notes"}),
            json!({"bucket": "notes", "prefix": "a/../b", "region": "r", "access_key_id": "k", "secret_access_key": "s"}),
            json!({"bucket": "notes", "region": "r", "endpoint": "http://h/path", "access_key_id": "k", "secret_access_key": "s"}),
            json!({"bucket": "notes", "region": "r", "access_key_id": "k"}),
        ] {
            assert!(VaultCredential::parse(&bad).is_err(), "{bad}");
        }
        let error = VaultCredential::parse(&json!({"bucket": "notes", "region": "r", "access_key_id": "k", "secret_access_key": " SECRETVALUE "}))
            .err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!error.contains("SECRETVALUE") && error.contains("secret_access_key"), "{error}");
    }
}
