//! A local key file standing in for KMS. It holds a master key and the data keys wrapped
//! (AES-256-GCM sealed) by it, so the layout matches the KMS keyring: data keys are only ever
//! stored wrapped, and unwrapped once at start.
//!
//! ```json
//! {"format":1,"master_key":"<b64>","active":1,
//!  "data_keys":[{"version":1,"wrapped":{"nonce":"<b64>","ciphertext":"<b64>"}}]}
//! ```
//!
//! The file is created with mode 0600 and never overwritten in place: creation links a complete
//! temporary file into place (failing if one appeared meanwhile), and rotation renames a
//! complete new file over the old one under a lock file.

mod file;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use squaremcp_core::{Keyring, KeyringError, SealedSecret, Secret, SecretBinding};
use squaremcp_envelope::{DataKey, DataKeys, generate_key};

use self::file::{KeyFile, RotationLock, WrappedKey};

/// How often, at most, a record sealed with a version this keyring lacks makes it read the
/// file again (a rotation by another process, e.g. the CLI while `serve` runs).
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

pub struct KeyFileKeyring {
    path: PathBuf,
    keys: RwLock<Arc<DataKeys>>,
    reloaded_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for KeyFileKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileKeyring").field("active_version", &self.active_version()).finish_non_exhaustive()
    }
}

impl KeyFileKeyring {
    /// Opens the key file, or creates it (with a fresh master key and data key 1) if there is
    /// none. A file that exists but cannot be read or unwrapped is an error, never replaced.
    pub fn open_or_create(path: &Path) -> Result<Self, KeyringError> {
        let file = match KeyFile::read(path)? {
            Some(file) => file,
            None => create(path)?,
        };
        let keys = file.unwrap_data_keys(path)?;
        Ok(Self { path: path.to_owned(), keys: RwLock::new(Arc::new(keys)), reloaded_at: Mutex::new(None) })
    }

    fn keys(&self) -> Arc<DataKeys> {
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The data key version new secrets are sealed with.
    pub fn active_version(&self) -> u32 {
        self.keys().active_version()
    }

    /// Reads the file again after a rotation elsewhere; `false` when it is too soon to try.
    fn reload(&self) -> Result<bool, KeyringError> {
        {
            let mut last = self.reloaded_at.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < RELOAD_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let file = KeyFile::read(&self.path)?.ok_or_else(|| file::error(&self.path, "the key file disappeared"))?;
        let keys = file.unwrap_data_keys(&self.path)?;
        tracing::info!(path = %self.path.display(), active = keys.active_version(), "read the key file again for a newer data key");
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        Ok(true)
    }

    /// Adds a new data key to the file and makes it the active one; returns its version.
    /// Secrets sealed under older versions still open. A keyring already running keeps sealing
    /// with the version it started with, and reads the file again when it meets a secret sealed
    /// with a newer one (after `credentials rewrap`).
    pub fn rotate(path: &Path) -> Result<u32, KeyringError> {
        let _lock = RotationLock::acquire(path)?;
        let mut file = KeyFile::read(path)?.ok_or_else(|| file::error(path, "there is no key file to rotate"))?;
        // Unwrapping every key first refuses to extend a file that is already broken.
        file.unwrap_data_keys(path)?;
        let version = file.next_version(path)?;
        let material = generate_key()?;
        let wrapped = WrappedKey::wrap(&file.master_key(path)?, version, material.expose())?;
        file.add_active(version, wrapped);
        file.replace(path)?;
        tracing::info!(path = %path.display(), version, "rotated the key file: new secrets use the new data key");
        Ok(version)
    }
}

/// A new key file: a master key and data key version 1, wrapped by it.
fn create(path: &Path) -> Result<KeyFile, KeyringError> {
    let master = generate_key()?;
    let data_key = generate_key()?;
    let master_key = DataKey::new(file::MASTER_KEY_VERSION, master.expose())?;
    let wrapped = WrappedKey::wrap(&master_key, 1, data_key.expose())?;
    let file = KeyFile::new(master.expose(), wrapped);
    match file.create(path)? {
        true => {
            tracing::info!(path = %path.display(), "created a new key file; back it up: without it no credential opens");
            Ok(file)
        }
        // Another process created it first: use theirs, so that both agree on the keys.
        false => KeyFile::read(path)?.ok_or_else(|| file::error(path, "the key file vanished while being created")),
    }
}

#[async_trait]
impl Keyring for KeyFileKeyring {
    async fn seal(&self, binding: &SecretBinding, plaintext: &[u8]) -> Result<SealedSecret, KeyringError> {
        self.keys().seal(&binding.associated_data(), plaintext)
    }

    async fn open(&self, binding: &SecretBinding, sealed: &SealedSecret) -> Result<Secret<Vec<u8>>, KeyringError> {
        match self.keys().open(&binding.associated_data(), sealed) {
            Err(KeyringError::UnknownKeyVersion(_)) if self.reload()? => self.keys().open(&binding.associated_data(), sealed),
            other => other,
        }
    }
}
