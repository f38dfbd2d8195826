//! Rows back into domain values. Every stored string is parsed again, never trusted: a value
//! that no longer parses is reported as `Corrupt` rather than passed on.

use std::fmt::Display;

use rusqlite::Row;
use rusqlite::types::FromSql;
use squaremcp_core::{
    AccountName, ApiKeyHash, ApiKeyId, ApiKeyRecord, CredentialRecord, Customer, CustomerId, Email, PlanName, Platform,
    SealedSecret, StoreError, Timestamp,
};

use super::error::db_error;

pub(super) const CUSTOMER_COLUMNS: &str = "id, email, plan, password_hash, created_at";
pub(super) const API_KEY_COLUMNS: &str = "id, customer_id, name, hash, prefix, created_at, revoked_at";
pub(super) const CREDENTIAL_COLUMNS: &str =
    "customer_id, platform, account, key_version, nonce, ciphertext, created_at, updated_at";

pub(super) fn customer(row: &Row<'_>) -> Result<Customer, StoreError> {
    Ok(Customer {
        id: parsed(row, 0, CustomerId::parse)?,
        email: parsed(row, 1, Email::parse)?,
        plan: parsed(row, 2, PlanName::parse)?,
        password_hash: column(row, 3)?,
        created_at: timestamp(row, 4)?,
    })
}

pub(super) fn api_key(row: &Row<'_>) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: parsed(row, 0, ApiKeyId::parse)?,
        customer_id: parsed(row, 1, CustomerId::parse)?,
        name: column(row, 2)?,
        hash: ApiKeyHash::from_stored(column(row, 3)?),
        prefix: column(row, 4)?,
        created_at: timestamp(row, 5)?,
        revoked_at: column::<Option<i64>>(row, 6)?.map(Timestamp::from_unix),
    })
}

/// Owner, platform and account are the row's primary key columns (see the schema), so a row
/// copied under another customer's id reads as that customer's, and its sealed secret, bound
/// to the original ones, does not open there.
pub(super) fn credential(row: &Row<'_>) -> Result<CredentialRecord, StoreError> {
    Ok(CredentialRecord {
        customer_id: parsed(row, 0, CustomerId::parse)?,
        platform: parsed(row, 1, str::parse::<Platform>)?,
        account: parsed(row, 2, AccountName::parse)?,
        sealed: SealedSecret { key_version: column(row, 3)?, nonce: column(row, 4)?, ciphertext: column(row, 5)? },
        created_at: timestamp(row, 6)?,
        updated_at: timestamp(row, 7)?,
    })
}

/// A counter's value; the CHECK constraint keeps it non-negative, so a negative one is corruption.
pub(super) fn counter_value(row: &Row<'_>) -> Result<u64, StoreError> {
    let value: i64 = column(row, 0)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("counter holds the negative value {value}")))
}

fn column<T: FromSql>(row: &Row<'_>, index: usize) -> Result<T, StoreError> {
    row.get(index).map_err(db_error)
}

fn timestamp(row: &Row<'_>, index: usize) -> Result<Timestamp, StoreError> {
    column(row, index).map(Timestamp::from_unix)
}

fn parsed<T, E: Display>(
    row: &Row<'_>,
    index: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    let text: String = column(row, index)?;
    parse(&text).map_err(|error| {
        let name = row.as_ref().column_name(index).unwrap_or("?");
        StoreError::Corrupt(format!("column `{name}`: {error}"))
    })
}
