//! Building and reading DynamoDB items. Every value read is checked: a missing attribute or
//! one of the wrong type is `Corrupt`, never a panic.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use squaremcp_core::StoreError;

use crate::table::{PK, SK};

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn b(value: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

/// The primary key of an item.
pub(crate) fn key((pk, sk): (String, String)) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// An item with its key and `attributes`.
pub(crate) fn with_key(pk_sk: (String, String), attributes: impl IntoIterator<Item = (&'static str, AttributeValue)>) -> Item {
    let mut item = key(pk_sk);
    item.extend(attributes.into_iter().map(|(name, value)| (name.to_owned(), value)));
    item
}

/// Typed access to an item's attributes, naming the item kind in errors.
pub(crate) struct Reader<'a> {
    item: &'a Item,
    kind: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(item: &'a Item, kind: &'static str) -> Self {
        Self { item, kind }
    }

    fn corrupt(&self, name: &str, why: &str) -> StoreError {
        StoreError::Corrupt(format!("{} attribute `{name}` {why}", self.kind))
    }

    pub(crate) fn opt_s(&self, name: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(text)),
            Some(_) => Err(self.corrupt(name, "is not a string")),
        }
    }

    pub(crate) fn s(&self, name: &str) -> Result<&'a str, StoreError> {
        self.opt_s(name)?.ok_or_else(|| self.corrupt(name, "is missing"))
    }

    /// A string attribute parsed by the domain's own parser.
    pub(crate) fn parsed<T, E: std::fmt::Display>(&self, name: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, StoreError> {
        parse(self.s(name)?).map_err(|e| self.corrupt(name, &format!("does not parse ({e})")))
    }

    pub(crate) fn opt_n<T: FromStr>(&self, name: &str) -> Result<Option<T>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(text)) => {
                text.parse().map(Some).map_err(|_| self.corrupt(name, &format!("holds the out-of-range number {text}")))
            }
            Some(_) => Err(self.corrupt(name, "is not a number")),
        }
    }

    pub(crate) fn n<T: FromStr>(&self, name: &str) -> Result<T, StoreError> {
        self.opt_n(name)?.ok_or_else(|| self.corrupt(name, "is missing"))
    }

    pub(crate) fn b(&self, name: &str) -> Result<&'a [u8], StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::B(blob)) => Ok(blob.as_ref()),
            Some(_) => Err(self.corrupt(name, "is not binary")),
            None => Err(self.corrupt(name, "is missing")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reading_checks_presence_and_types() {
        let item = with_key(("P".into(), "S".into()), [("name", s("ada")), ("count", n(7)), ("blob", b(b"\x00\xff")), ("big", n("1e400"))]);
        let r = Reader::new(&item, "test");
        assert_eq!(r.s("name").unwrap(), "ada");
        assert_eq!(r.n::<u64>("count").unwrap(), 7);
        assert_eq!(r.b("blob").unwrap(), b"\x00\xff");
        assert_eq!(r.opt_s("absent").unwrap(), None);
        for error in [r.s("absent").unwrap_err(), r.s("count").unwrap_err(), r.n::<u64>("name").unwrap_err(), r.n::<u64>("big").unwrap_err(), r.b("name").unwrap_err()] {
            assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        }
        assert!(r.parsed("name", |t: &str| t.parse::<u8>()).is_err());
    }
}
