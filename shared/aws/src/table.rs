//! The single table: its definition (kept identical in `template.yaml` and
//! `localstack/init.sh`) and the key of every item kind, from the access patterns:
//!
//! | item | PK | SK | GSI1PK / GSI1SK | read by |
//! |---|---|---|---|---|
//! | customer | `CUS#<id>` | `PROFILE` | `CUSTOMERS` / `<id>` | GetItem; listing: Query GSI1 |
//! | email guard | `EMAIL#<email>` | `EMAIL` | | GetItem (then the customer) |
//! | API key | `APIKEY#<sha256>` | `APIKEY` | `CUS#<id>#APIKEYS` / `<created>#<key id>` | GetItem per request; listing: Query GSI1 |
//! | API key id guard | `APIKEYID#<key id>` | `APIKEYID` | | GetItem (revocation) |
//! | credential | `CUS#<id>` | `CRED#<platform>#<account>` | | one Query per `tools/call`; owner, platform and account are read from the keys |
//! | call record | `CUS#<id>` | `CALL#<unix>.<nanos>-<random>` | | Query by time range; TTL |
//! | counter | `COUNTER#<key>` | `COUNTER` | | UpdateItem `ADD` with a condition |
//! | single-use item | `ONCE#<key>` | `ONCE` | | conditional DeleteItem |
//! | item | `ITEM#<key>` | `ITEM` | | GetItem, conditional PutItem |
//! | data key | `KEYRING` | `DATAKEY#<version>` | | one Query per process (KMS keyring) |
//! | active data key | `KEYRING` | `ACTIVE` | | same Query |
//!
//! Every read on the request path is a strongly consistent `GetItem` or `Query` on the table;
//! only the administrative listings (customers, a customer's API keys) go through GSI1, which
//! DynamoDB keeps eventually consistent (a key created a moment ago may list a moment later;
//! it authenticates at once).
//!
//! Guards make uniqueness a transaction (`TransactWriteItems` with `attribute_not_exists`).
//! Items that expire carry `expires_at` (epoch seconds), the table's TTL attribute; DynamoDB
//! deletes them late, so every read filters them too.

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1: &str = "GSI1";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub(crate) fn customer(id: &str) -> (String, String) {
    (format!("CUS#{id}"), "PROFILE".to_owned())
}

pub(crate) fn email_guard(email: &str) -> (String, String) {
    (format!("EMAIL#{email}"), "EMAIL".to_owned())
}

pub(crate) const CUSTOMERS_INDEX: &str = "CUSTOMERS";

pub(crate) fn api_key(hash: &str) -> (String, String) {
    (format!("APIKEY#{hash}"), "APIKEY".to_owned())
}

pub(crate) fn api_key_id_guard(id: &str) -> (String, String) {
    (format!("APIKEYID#{id}"), "APIKEYID".to_owned())
}

pub(crate) fn api_keys_index(customer: &str) -> String {
    format!("CUS#{customer}#APIKEYS")
}

/// Sorts by creation time, then id. The sign bit is flipped so that the zero-padded decimal
/// of any `i64` sorts as the number does.
pub(crate) fn api_keys_index_sort(created_at: i64, id: &str) -> String {
    format!("{:020}#{id}", (created_at as u64) ^ (1 << 63))
}

pub(crate) fn credentials_partition(customer: &str) -> String {
    format!("CUS#{customer}")
}

/// `#` sorts before every character of platform and account names, so the sort key orders by
/// platform, then account, and `CRED#<platform>#` selects exactly one platform.
pub(crate) fn credential_sort(platform: &str, account: &str) -> String {
    format!("CRED#{platform}#{account}")
}

/// The customer, platform and account a credential's keys name: `None` unless they have the
/// shape [`credentials_partition`] and [`credential_sort`] give them. Platform names contain
/// no `#`, so the account is everything after the second one.
pub(crate) fn parse_credential_keys<'a>(partition: &'a str, sort: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
    let customer = partition.strip_prefix("CUS#")?;
    let (platform, account) = sort.strip_prefix("CRED#")?.split_once('#')?;
    Some((customer, platform, account))
}

pub(crate) fn credentials_prefix(platform: Option<&str>) -> String {
    match platform {
        Some(platform) => format!("CRED#{platform}#"),
        None => "CRED#".to_owned(),
    }
}

/// Beside the customer's credentials; the sort key orders by time (see `CallRecord::id`).
pub(crate) fn call_record(customer: &str, id: &str) -> (String, String) {
    (format!("CUS#{customer}"), format!("CALL#{id}"))
}

pub(crate) fn call_records_from(seconds: i64) -> String {
    format!("CALL#{:010}", seconds.max(0))
}

pub(crate) fn counter(key: &str) -> (String, String) {
    (format!("COUNTER#{key}"), "COUNTER".to_owned())
}

pub(crate) fn single_use(key: &str) -> (String, String) {
    (format!("ONCE#{key}"), "ONCE".to_owned())
}

pub(crate) fn item(key: &str) -> (String, String) {
    (format!("ITEM#{key}"), "ITEM".to_owned())
}

pub(crate) const KEYRING: &str = "KEYRING";
pub(crate) const KEYRING_ACTIVE: &str = "ACTIVE";
pub(crate) const KEYRING_DATA_KEY_PREFIX: &str = "DATAKEY#";

pub(crate) fn data_key_sort(version: u32) -> String {
    format!("{KEYRING_DATA_KEY_PREFIX}{version:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_sort_keys_order_like_their_times() {
        let times = [i64::MIN, -5, -1, 0, 1, 1_800_000_000, i64::MAX];
        let keys: Vec<String> = times.iter().map(|t| api_keys_index_sort(*t, "key_a")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(api_keys_index_sort(5, "key_a") < api_keys_index_sort(5, "key_b"));
    }

    #[test]
    fn credential_sort_keys_order_by_platform_then_account() {
        let mut keys = [
            credential_sort("telegram", "default"),
            credential_sort("email", "work"),
            credential_sort("email", "home"),
            credential_sort("email", "a-b"),
            credential_sort("discord", "default"),
        ];
        keys.sort();
        assert_eq!(keys[0], "CRED#discord#default");
        assert_eq!(&keys[1..4], ["CRED#email#a-b", "CRED#email#home", "CRED#email#work"]);
        assert!(credential_sort("email", "x").starts_with(&credentials_prefix(Some("email"))));
        assert!(!credential_sort("emails", "x").starts_with(&credentials_prefix(Some("email"))));
        let (partition, sort) = (credentials_partition("cus_1"), credential_sort("email", "work@example.com"));
        assert_eq!(parse_credential_keys(&partition, &sort), Some(("cus_1", "email", "work@example.com")));
        assert_eq!(parse_credential_keys("EMAIL#x", &sort), None, "not a customer partition");
        assert_eq!(parse_credential_keys(&partition, "CALL#1"), None, "not a credential");
        assert_eq!(parse_credential_keys(&partition, "CRED#email"), None, "no account");
    }
}
