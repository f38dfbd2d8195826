//! The key file on disk: its JSON shape, validation, and writes that never leave a partial or
//! world-readable file behind.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use squaremcp_core::{KeyringError, SealedSecret, random};
use squaremcp_envelope::{DataKey, DataKeys, KEY_LEN};

/// The master key wraps data keys only; version 0 is never given to a data key.
pub(super) const MASTER_KEY_VERSION: u32 = 0;
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyFile {
    format: u32,
    master_key: String,
    active: u32,
    data_keys: Vec<StoredDataKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredDataKey {
    version: u32,
    wrapped: WrappedKey,
}

/// A data key sealed by the master key, bound to its version by the associated data, so that
/// swapping two wrapped keys in the file is detected.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WrappedKey {
    nonce: String,
    ciphertext: String,
}

/// A keyring error naming the file, so the operator knows which file to look at.
pub(super) fn error(path: &Path, why: impl std::fmt::Display) -> KeyringError {
    KeyringError::Unavailable(format!("key file {}: {why}", path.display()))
}

fn wrapping_associated_data(version: u32) -> Vec<u8> {
    format!("squaremcp-data-key:v{version}").into_bytes()
}

fn decode(path: &Path, field: &str, text: &str) -> Result<Vec<u8>, KeyringError> {
    BASE64.decode(text).map_err(|e| error(path, format!("`{field}` is not base64 ({e})")))
}

impl WrappedKey {
    pub(super) fn wrap(master: &DataKey, version: u32, material: &[u8]) -> Result<Self, KeyringError> {
        let sealed = master.seal(&wrapping_associated_data(version), material)?;
        Ok(Self { nonce: BASE64.encode(sealed.nonce), ciphertext: BASE64.encode(sealed.ciphertext) })
    }

    fn unwrap(&self, path: &Path, master: &DataKey, version: u32) -> Result<DataKey, KeyringError> {
        let sealed = SealedSecret {
            key_version: MASTER_KEY_VERSION,
            nonce: decode(path, "nonce", &self.nonce)?,
            ciphertext: decode(path, "ciphertext", &self.ciphertext)?,
        };
        let material = master.open(&wrapping_associated_data(version), &sealed).map_err(|_| {
            error(
                path,
                format!("data key {version} does not unwrap with the master key (the file is corrupt or was edited)"),
            )
        })?;
        DataKey::new(version, material.expose())
    }
}

impl KeyFile {
    pub(super) fn new(master_key: &[u8; KEY_LEN], first: WrappedKey) -> Self {
        Self {
            format: FORMAT,
            master_key: BASE64.encode(master_key),
            active: 1,
            data_keys: vec![StoredDataKey { version: 1, wrapped: first }],
        }
    }

    /// `None` when there is no file; an error when there is one that is not a key file.
    pub(super) fn read(path: &Path) -> Result<Option<Self>, KeyringError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(path, format!("cannot read it ({e})"))),
        };
        let file: Self = serde_json::from_slice(&bytes)
            .map_err(|e| error(path, format!("not a valid key file ({e}); it was left untouched")))?;
        if file.format != FORMAT {
            return Err(error(path, format!("format {} is not supported (expected {FORMAT})", file.format)));
        }
        Ok(Some(file))
    }

    pub(super) fn master_key(&self, path: &Path) -> Result<DataKey, KeyringError> {
        let material = decode(path, "master_key", &self.master_key)?;
        if material.len() != KEY_LEN {
            return Err(error(path, format!("the master key is {} bytes, expected {KEY_LEN}", material.len())));
        }
        DataKey::new(MASTER_KEY_VERSION, &material)
    }

    /// Every data key, unwrapped and checked: versions unique and non-zero, the active one present.
    pub(super) fn unwrap_data_keys(&self, path: &Path) -> Result<DataKeys, KeyringError> {
        let master = self.master_key(path)?;
        let mut versions = std::collections::BTreeSet::new();
        let mut keys = Vec::with_capacity(self.data_keys.len());
        for stored in &self.data_keys {
            if stored.version == MASTER_KEY_VERSION || !versions.insert(stored.version) {
                return Err(error(path, format!("data key version {} is invalid or repeated", stored.version)));
            }
            keys.push(stored.wrapped.unwrap(path, &master, stored.version)?);
        }
        DataKeys::new(self.active, keys)
            .map_err(|_| error(path, format!("the active version {} has no data key", self.active)))
    }

    pub(super) fn next_version(&self, path: &Path) -> Result<u32, KeyringError> {
        let highest = self.data_keys.iter().map(|k| k.version).max().unwrap_or(MASTER_KEY_VERSION);
        highest.checked_add(1).ok_or_else(|| error(path, "no data key version is left"))
    }

    pub(super) fn add_active(&mut self, version: u32, wrapped: WrappedKey) {
        self.data_keys.push(StoredDataKey { version, wrapped });
        self.active = version;
    }

    /// Writes the file only if none exists; `false` when one was already there.
    pub(super) fn create(&self, path: &Path) -> Result<bool, KeyringError> {
        create_private_directory(path)?;
        let temporary = self.write_temporary(path)?;
        // Linking fails if the target exists, so an existing file is never replaced, and the
        // file appears complete or not at all.
        let linked = fs::hard_link(&temporary, path);
        remove_quietly(&temporary);
        match linked {
            Ok(()) => {
                sync_directory(path);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(error(path, format!("cannot create it ({e})"))),
        }
    }

    /// Replaces the file atomically: readers see the old file or the new one, never a mix.
    pub(super) fn replace(&self, path: &Path) -> Result<(), KeyringError> {
        let temporary = self.write_temporary(path)?;
        if let Err(e) = fs::rename(&temporary, path) {
            remove_quietly(&temporary);
            return Err(error(path, format!("cannot replace it ({e})")));
        }
        sync_directory(path);
        Ok(())
    }

    /// A complete, synced, owner-only copy next to `path`, to be moved into place.
    fn write_temporary(&self, path: &Path) -> Result<PathBuf, KeyringError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| error(path, format!("cannot encode it ({e})")))?;
        let temporary = sibling(path, &format!("{}.tmp", random::hex_id::<8>()));
        let written = write_private(&temporary, &json);
        if let Err(e) = written {
            remove_quietly(&temporary);
            return Err(error(path, format!("cannot write {} ({e})", temporary.display())));
        }
        Ok(temporary)
    }
}

/// Held while a rotation reads and rewrites the file, so two rotations cannot both add "the
/// next" version and lose one of them.
pub(super) struct RotationLock(PathBuf);

impl RotationLock {
    pub(super) fn acquire(path: &Path) -> Result<Self, KeyringError> {
        let lock = sibling(path, "lock");
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => Ok(Self(lock)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(error(path, format!("another rotation is in progress (if none is, remove {})", lock.display())))
            }
            Err(e) => Err(error(path, format!("cannot create the lock file {} ({e})", lock.display()))),
        }
    }
}

impl Drop for RotationLock {
    fn drop(&mut self) {
        remove_quietly(&self.0);
    }
}

/// `<path>.<suffix>`, in the same directory so that link and rename stay on one filesystem.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn create_private_directory(path: &Path) -> Result<(), KeyringError> {
    let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) else { return Ok(()) };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(directory).map_err(|e| error(path, format!("cannot create {} ({e})", directory.display())))
}

/// Makes a link or rename durable. Best effort: not every platform can open a directory.
fn sync_directory(path: &Path) {
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(handle) = fs::File::open(directory)
    {
        let _ = handle.sync_all();
    }
}

/// Cleanup of our own temporary files; failing to remove one is harmless.
fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}
