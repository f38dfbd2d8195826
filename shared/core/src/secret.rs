//! A wrapper that keeps secrets out of `Debug` output and therefore out of logs, and wipes
//! them from memory when dropped, so that a freed allocation (later handed to another buffer,
//! or read from a core dump) does not still hold a token or a data key.

use std::fmt;

use zeroize::Zeroize as _;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T: Wipe>(T);

impl<T: Wipe> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The only way to the value: grep for it when auditing where secrets flow.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Wipe> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.wipe();
    }
}

impl<T: Wipe> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<T: Wipe> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// What a [`Secret`] can hold: a value that can overwrite its own bytes. The writes are
/// volatile (the `zeroize` crate), so the compiler cannot drop them as dead stores before a free.
pub trait Wipe {
    fn wipe(&mut self);
}

impl Wipe for String {
    /// Every byte of the allocation, spare capacity included; the string is left empty.
    fn wipe(&mut self) {
        self.zeroize();
    }
}

impl Wipe for Vec<u8> {
    fn wipe(&mut self) {
        self.zeroize();
    }
}

impl<const N: usize> Wipe for [u8; N] {
    fn wipe(&mut self) {
        self.zeroize();
    }
}

impl Wipe for serde_json::Value {
    /// A credential document: every string in it, at any depth. Object keys are field names
    /// (`access_token`), not secrets, and `serde_json` offers no way to change them in place;
    /// numbers are left too (no secret the platforms hand out is a number).
    fn wipe(&mut self) {
        match self {
            serde_json::Value::String(text) => text.wipe(),
            serde_json::Value::Array(values) => values.iter_mut().for_each(Wipe::wipe),
            serde_json::Value::Object(fields) => fields.values_mut().for_each(Wipe::wipe),
            serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2".to_string());
        let shown = format!("{secret:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(secret.expose(), "hunter2");
    }

    /// Counts its wipes, to see that dropping a secret wipes it (and only then).
    #[derive(Clone)]
    struct Probe(Arc<AtomicUsize>);

    impl Wipe for Probe {
        fn wipe(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_a_secret_wipes_its_value_and_each_clone_wipes_its_own() {
        let wipes = Arc::new(AtomicUsize::new(0));
        let secret = Secret::new(Probe(Arc::clone(&wipes)));
        let copy = secret.clone();
        assert_eq!(wipes.load(Ordering::SeqCst), 0, "nothing is wiped while the secret lives");
        drop(secret);
        assert_eq!(wipes.load(Ordering::SeqCst), 1);
        drop(copy);
        assert_eq!(wipes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn strings_and_byte_buffers_are_overwritten() {
        let mut text = String::with_capacity(32);
        text.push_str("hunter2");
        text.wipe();
        assert!(text.is_empty());
        let mut bytes = vec![7u8; 16];
        bytes.wipe();
        assert!(bytes.is_empty());
        let mut key = [9u8; 32];
        key.wipe();
        assert_eq!(key, [0u8; 32]);
    }

    #[test]
    fn every_string_in_a_credential_document_is_wiped() {
        let mut document = serde_json::json!({
            "access_token": "token-1",
            "nested": {"refresh_token": "token-2", "scopes": ["a", "b"]},
            "expires_in": 3600,
        });
        document.wipe();
        assert_eq!(
            document,
            serde_json::json!({"access_token": "", "nested": {"refresh_token": "", "scopes": ["", ""]}, "expires_in": 3600})
        );
    }
}
