//! The deployment's own Obsidian vault bucket (`SQUAREMCP_OBSIDIAN_BUCKET`): read from the
//! environment, and reached with STS keys scoped to one customer's prefix.

use std::sync::Arc;

use async_trait::async_trait;
use squaremcp_core::CustomerId;
use squaremcp_platforms::obsidian::{DeploymentBucket, TemporaryKeys, VaultKeys};

use crate::config::ConfigError;

/// `None` unless `SQUAREMCP_OBSIDIAN_BUCKET` is set; then `SQUAREMCP_OBSIDIAN_ROLE_ARN` is
/// required. The region is `SQUAREMCP_OBSIDIAN_BUCKET_REGION`, else `AWS_REGION`; the endpoint
/// is AWS's unless `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) names another, as for the SDK.
pub(crate) fn deployment_bucket(get: &dyn Fn(&str) -> Option<String>) -> Result<Option<DeploymentBucket>, ConfigError> {
    let error = |variable: &str, why: &str| ConfigError { variable: variable.to_owned(), why: why.to_owned() };
    let Some(bucket) = get("SQUAREMCP_OBSIDIAN_BUCKET") else { return Ok(None) };
    if !(3..=63).contains(&bucket.len()) || !bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return Err(error("SQUAREMCP_OBSIDIAN_BUCKET", "is not an S3 bucket name (3 to 63 of a-z, 0-9, `.` and `-`)"));
    }
    let role_arn = get("SQUAREMCP_OBSIDIAN_ROLE_ARN").ok_or_else(|| {
        error("SQUAREMCP_OBSIDIAN_ROLE_ARN", "required with SQUAREMCP_OBSIDIAN_BUCKET: the role the gateway assumes, per customer, to reach the bucket")
    })?;
    if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
        return Err(error("SQUAREMCP_OBSIDIAN_ROLE_ARN", "is not an IAM role ARN like arn:aws:iam::123456789012:role/squaremcp-vaults"));
    }
    let region = get("SQUAREMCP_OBSIDIAN_BUCKET_REGION").or_else(|| get("AWS_REGION")).unwrap_or_else(|| "us-east-1".to_owned());
    if region.len() > 40 || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(error("SQUAREMCP_OBSIDIAN_BUCKET_REGION", "is not a region name like eu-west-1"));
    }
    let endpoint = match get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")) {
        None => None,
        Some(url) => Some(
            squaremcp_platforms::kit::origin("https://s3.amazonaws.com", Some(&url))
                .map_err(|_| error("AWS_ENDPOINT_URL_S3", "must be a scheme, host and port, like http://127.0.0.1:9000"))?,
        ),
    };
    let keys = Arc::new(StsVaultKeys(squaremcp_aws::ScopedKeys::new(&role_arn, &bucket)));
    Ok(Some(DeploymentBucket { bucket, region, endpoint, keys }))
}

struct StsVaultKeys(squaremcp_aws::ScopedKeys);

#[async_trait]
impl VaultKeys for StsVaultKeys {
    async fn keys_for(&self, customer: &CustomerId) -> Result<TemporaryKeys, String> {
        let keys = self.0.keys_for(customer.as_str()).await.map_err(|error| error.to_string())?;
        Ok(TemporaryKeys { access_key_id: keys.access_key_id, secret_access_key: keys.secret_access_key, session_token: Some(keys.session_token) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<DeploymentBucket>, ConfigError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        deployment_bucket(&|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_bucket_needs_its_role_and_takes_the_sdks_region_and_endpoint() {
        assert!(read(&[]).expect("no bucket is fine").is_none());
        let bucket = read(&[
            ("SQUAREMCP_OBSIDIAN_BUCKET", "squaremcp-vaults"),
            ("SQUAREMCP_OBSIDIAN_ROLE_ARN", "arn:aws:iam::123456789012:role/vaults"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5765/"),
        ])
        .expect("valid")
        .expect("a bucket");
        assert_eq!((bucket.bucket.as_str(), bucket.region.as_str()), ("squaremcp-vaults", "eu-west-1"));
        assert_eq!(bucket.endpoint.as_deref(), Some("http://127.0.0.1:5765"));
        let refused = |pairs: &[(&str, &str)]| read(pairs).err().map(|e| e.variable).unwrap_or_default();
        assert_eq!(refused(&[("SQUAREMCP_OBSIDIAN_BUCKET", "vaults")]), "SQUAREMCP_OBSIDIAN_ROLE_ARN");
        assert_eq!(refused(&[("SQUAREMCP_OBSIDIAN_BUCKET", "Vaults_Bucket"), ("SQUAREMCP_OBSIDIAN_ROLE_ARN", "arn:aws:iam::1:role/r")]), "SQUAREMCP_OBSIDIAN_BUCKET");
        assert_eq!(refused(&[("SQUAREMCP_OBSIDIAN_BUCKET", "vaults"), ("SQUAREMCP_OBSIDIAN_ROLE_ARN", "vaults-role")]), "SQUAREMCP_OBSIDIAN_ROLE_ARN");
        assert_eq!(
            refused(&[("SQUAREMCP_OBSIDIAN_BUCKET", "vaults"), ("SQUAREMCP_OBSIDIAN_ROLE_ARN", "arn:aws:iam::1:role/r"), ("AWS_ENDPOINT_URL_S3", "s3 please")]),
            "AWS_ENDPOINT_URL_S3"
        );
    }
}
