//! Temporary keys that reach one prefix of a bucket and nothing else: STS `AssumeRole` on the
//! operator's vault role with a session policy naming the prefix. The role may reach the whole
//! bucket; the keys it hands out are the intersection of its policy and the session policy.
//! Keys are cached per prefix in the process until five minutes before they expire.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use serde_json::json;
use tokio::sync::OnceCell;

/// Role chaining (a Lambda's role assuming another) allows at most one hour.
const SESSION_SECONDS: i32 = 3600;
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// No `Debug`: the secret and the token must not reach a log.
#[derive(Clone)]
pub struct PrefixKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScopedKeysError {
    #[error("STS AssumeRole: {0}")]
    Sts(String),
    #[error("the prefix `{0}` cannot name a session (letters, digits and _-+=,.@ only, 2 to 64)")]
    BadSessionName(String),
}

pub struct ScopedKeys {
    /// Built on first use from the standard AWS environment: a process that never opens a vault
    /// in the bucket (and every cold start) pays nothing for it.
    sts: OnceCell<aws_sdk_sts::Client>,
    role_arn: String,
    bucket: String,
    cache: Mutex<HashMap<String, (PrefixKeys, SystemTime)>>,
}

impl ScopedKeys {
    pub fn new(role_arn: &str, bucket: &str) -> Self {
        Self { sts: OnceCell::new(), role_arn: role_arn.to_owned(), bucket: bucket.to_owned(), cache: Mutex::default() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Keys for the objects under `<session>/` in the bucket; `session` (a customer id) also
    /// names the STS session, so CloudTrail shows whose vault each request touched.
    pub async fn keys_for(&self, session: &str) -> Result<PrefixKeys, ScopedKeysError> {
        if !(2..=64).contains(&session.len()) || !session.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-+=,.@".contains(&b)) {
            return Err(ScopedKeysError::BadSessionName(session.to_owned()));
        }
        let now = SystemTime::now();
        if let Some((keys, expires)) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(session)
            && now + RENEW_BEFORE < *expires
        {
            return Ok(keys.clone());
        }
        let policy = session_policy(&self.role_arn, &self.bucket, &format!("{session}/"));
        let sts = self
            .sts
            .get_or_init(|| async {
                aws_sdk_sts::Client::new(&aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await)
            })
            .await;
        let answer = sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(session)
            .policy(policy)
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(|error| ScopedKeysError::Sts(DisplayErrorContext(error).to_string()))?;
        let credentials = answer.credentials().ok_or_else(|| ScopedKeysError::Sts("the answer has no credentials".to_owned()))?;
        let keys = PrefixKeys {
            access_key_id: credentials.access_key_id().to_owned(),
            secret_access_key: credentials.secret_access_key().to_owned(),
            session_token: credentials.session_token().to_owned(),
        };
        let expires = SystemTime::try_from(*credentials.expiration()).unwrap_or(now);
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(session.to_owned(), (keys.clone(), expires));
        Ok(keys)
    }
}

/// Read, write and list under `prefix` only. The partition (`aws`, `aws-cn`, `aws-us-gov`) is
/// the role's own.
fn session_policy(role_arn: &str, bucket: &str, prefix: &str) -> String {
    let partition = role_arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": format!("arn:{partition}:s3:::{bucket}/{prefix}*"),
            },
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": format!("arn:{partition}:s3:::{bucket}"),
                "Condition": { "StringLike": { "s3:prefix": format!("{prefix}*") } },
            },
        ],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn the_session_policy_reaches_only_the_prefix() {
        let policy: Value =
            serde_json::from_str(&session_policy("arn:aws-cn:iam::123456789012:role/vaults", "notes", "cus_0123/")).expect("JSON");
        let statements = policy["Statement"].as_array().expect("statements");
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Resource"], "arn:aws-cn:s3:::notes/cus_0123/*");
        assert_eq!(statements[0]["Action"], json!(["s3:GetObject", "s3:PutObject"]));
        assert_eq!(statements[1]["Resource"], "arn:aws-cn:s3:::notes");
        assert_eq!(statements[1]["Condition"]["StringLike"]["s3:prefix"], "cus_0123/*");
        assert!(statements.iter().all(|s| s["Effect"] == "Allow"), "{policy}");
        // AWS caps a packed session policy at 2,048 characters.
        assert!(session_policy("arn:aws:iam::123456789012:role/r", "b", &format!("{}/", "c".repeat(64))).len() < 1024);
    }
}
