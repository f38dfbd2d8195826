//! The emulators these tests run against: DynamoDB Local and moto_server, started by
//! `scripts/test` (or `scripts/emulators/emulators.sh start`), found through the standard
//! AWS variables it exports. Without them the tests fail, saying so.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use squaremcp_aws::AwsClients;
use squaremcp_core::random;

pub async fn clients() -> AwsClients {
    for variable in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_KMS",
        "AWS_ENDPOINT_URL_SQS",
    ] {
        let value = std::env::var(variable).unwrap_or_default();
        assert!(
            value.starts_with("http://127.0.0.1") || value.starts_with("http://localhost"),
            "{variable} must point at a local emulator (got {value:?}): run scripts/test, or \
             `scripts/emulators/emulators.sh start && eval \"$(scripts/emulators/emulators.sh env)\"`"
        );
    }
    AwsClients::from_env().await
}

/// A name no other test uses (tables, aliases, queues).
pub fn unique(kind: &str) -> String {
    format!("test-{kind}-{}", random::hex_id::<6>())
}

pub async fn fresh_table(clients: &AwsClients) -> String {
    let table = unique("table");
    squaremcp_aws::provision::ensure_table(&clients.dynamodb, &table)
        .await
        .expect("creating a table");
    table
}
