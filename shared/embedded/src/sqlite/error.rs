//! rusqlite errors translated into the store's contract.

use rusqlite::ffi;
use squaremcp_core::StoreError;

/// Undecodable values are `Corrupt`; everything else (I/O, locks, SQL) is `Unavailable`.
pub(super) fn db_error(error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(error.to_string()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Which constraint a failed write ran into.
pub(super) enum Violation<'a> {
    /// A primary key or unique index; carries SQLite's message, e.g.
    /// `UNIQUE constraint failed: customers.email`, which names the column.
    Unique(&'a str),
    /// The referenced customer does not exist.
    MissingCustomer,
}

pub(super) fn violation(error: &rusqlite::Error) -> Option<Violation<'_>> {
    let rusqlite::Error::SqliteFailure(failure, message) = error else { return None };
    match failure.extended_code {
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            Some(Violation::Unique(message.as_deref().unwrap_or_default()))
        }
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Violation::MissingCustomer),
        _ => None,
    }
}
