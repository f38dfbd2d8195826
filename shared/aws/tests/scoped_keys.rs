//! Per-customer vault keys from STS (moto_server): a session policy limits them to the prefix
//! (checked in the unit test; moto does not enforce policies), they carry a session token, and
//! they are reused until they near their expiry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use squaremcp_aws::{ScopedKeys, ScopedKeysError};

async fn keys() -> ScopedKeys {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_STS").unwrap_or_default();
    assert!(endpoint.starts_with("http://127.0.0.1"), "AWS_ENDPOINT_URL_STS must point at moto_server (got {endpoint:?})");
    ScopedKeys::new("arn:aws:iam::123456789012:role/squaremcp-vaults", "vaults")
}

#[tokio::test]
async fn each_customer_gets_its_own_temporary_keys_which_are_reused() {
    let keys = keys().await;
    let first = keys.keys_for("cus_0123456789abcdef01234567").await.unwrap();
    assert!(!first.access_key_id.is_empty() && !first.secret_access_key.is_empty() && !first.session_token.is_empty());
    let again = keys.keys_for("cus_0123456789abcdef01234567").await.unwrap();
    assert_eq!(again.access_key_id, first.access_key_id, "cached, not a second AssumeRole");
    let other = keys.keys_for("cus_fedcba9876543210fedcba98").await.unwrap();
    assert_ne!(other.access_key_id, first.access_key_id, "another customer's session");
}

#[tokio::test]
async fn a_prefix_that_cannot_name_a_session_is_refused_before_any_request() {
    let keys = keys().await;
    for bad in ["", "a", "cus_x/../y", &"c".repeat(65)] {
        assert!(matches!(keys.keys_for(bad).await, Err(ScopedKeysError::BadSessionName(_))), "{bad:?}");
    }
}
