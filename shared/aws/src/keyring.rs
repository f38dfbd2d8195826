//! The KMS keyring: credentials are sealed with AES-256-GCM under a data key exactly as by the
//! key-file keyring (`squaremcp-envelope`). Each data key comes from KMS `GenerateDataKey`
//! (AES_256) with an encryption context naming its version, and is stored only as KMS
//! ciphertext, in the table (`PK=KEYRING`). A process reads the keyring partition on first use
//! (one Query) and decrypts each version it needs once (one KMS `Decrypt`), then keeps it.
//!
//! Rotation adds a data key and makes it active; records sealed under older versions still
//! open, and `squaremcp credentials rewrap` moves them to the active one. A running process
//! that meets a version newer than it knows reads the keyring again (at most every
//! [`RELOAD_INTERVAL`]), so rotation and rewrap need no restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_kms::types::DataKeySpec;
use squaremcp_core::{Keyring, KeyringError, SealedSecret, Secret, SecretBinding, Timestamp};
use squaremcp_envelope::DataKey;
use tokio::sync::{OnceCell, RwLock};

use crate::error::keyring_unavailable;
use crate::item::{Item, Reader, b, key, n, s, with_key};
use crate::table::{self, KEYRING, KEYRING_ACTIVE, KEYRING_DATA_KEY_PREFIX, PK, SK};

pub const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

pub struct KmsKeyring {
    kms: aws_sdk_kms::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    /// The keyring partition as last read; `None` until first use.
    loaded: RwLock<Option<Arc<Loaded>>>,
}

/// The data keys as stored, each decrypted at most once.
struct Loaded {
    active: u32,
    wrapped: BTreeMap<u32, Wrapped>,
    /// When the keyring was last read again because a record named an unknown version.
    missed_at: Option<Instant>,
}

struct Wrapped {
    kms_key_id: String,
    ciphertext: Vec<u8>,
    key: OnceCell<Arc<DataKey>>,
}

impl std::fmt::Debug for KmsKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsKeyring").field("table", &self.table).finish_non_exhaustive()
    }
}

/// The KMS encryption context of data key `version`: Decrypt fails unless it matches, so a
/// wrapped key cannot be passed off as another version.
fn encryption_context(version: u32) -> HashMap<String, String> {
    HashMap::from([
        ("purpose".to_owned(), "squaremcp-data-key".to_owned()),
        ("data_key_version".to_owned(), version.to_string()),
    ])
}

impl KmsKeyring {
    /// Sends nothing: the keyring is read on first use.
    pub fn new(kms: aws_sdk_kms::Client, dynamodb: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { kms, dynamodb, table: table.into(), loaded: RwLock::new(None) }
    }

    /// The keyring as currently known: read from the table on first use, and again when `need`
    /// names a version it lacks (a rotation since), at most once per [`RELOAD_INTERVAL`].
    async fn keys(&self, need: Option<u32>) -> Result<Arc<Loaded>, KeyringError> {
        let missing = |loaded: &Loaded| need.is_some_and(|v| !loaded.wrapped.contains_key(&v));
        let may_reload = |loaded: &Loaded| loaded.missed_at.is_none_or(|at| at.elapsed() >= RELOAD_INTERVAL);
        if let Some(loaded) = self.loaded.read().await.as_ref()
            && !(missing(loaded) && may_reload(loaded))
        {
            return Ok(Arc::clone(loaded));
        }
        let mut slot = self.loaded.write().await;
        if let Some(loaded) = slot.as_ref()
            && !(missing(loaded) && may_reload(loaded))
        {
            return Ok(Arc::clone(loaded));
        }
        let mut fresh = read_keyring(&self.dynamodb, &self.table).await?;
        if let Some(previous) = slot.as_ref() {
            fresh.missed_at = Some(Instant::now());
            // Keys already decrypted stay decrypted.
            for (version, wrapped) in &mut fresh.wrapped {
                if let Some(old) = previous.wrapped.get(version)
                    && old.ciphertext == wrapped.ciphertext
                    && let Some(key) = old.key.get()
                {
                    wrapped.key = OnceCell::from(Arc::clone(key));
                }
            }
            tracing::info!(table = %self.table, active = fresh.active, "read the keyring again for a newer data key");
        }
        let fresh = Arc::new(fresh);
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    async fn data_key(&self, loaded: &Loaded, version: u32) -> Result<Arc<DataKey>, KeyringError> {
        let wrapped = loaded.wrapped.get(&version).ok_or(KeyringError::UnknownKeyVersion(version))?;
        let key = wrapped
            .key
            .get_or_try_init(|| async {
                let output = self
                    .kms
                    .decrypt()
                    .key_id(&wrapped.kms_key_id)
                    .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped.ciphertext.as_slice()))
                    .set_encryption_context(Some(encryption_context(version)))
                    .send()
                    .await
                    .map_err(|e| keyring_unavailable(&format!("KMS Decrypt of data key {version}"), e))?;
                let plaintext = output
                    .plaintext
                    .ok_or_else(|| KeyringError::Unavailable(format!("KMS returned no plaintext for data key {version}")))?;
                let plaintext = Secret::new(plaintext.into_inner());
                tracing::info!(version, "decrypted data key");
                DataKey::new(version, plaintext.expose()).map(Arc::new)
            })
            .await?;
        Ok(Arc::clone(key))
    }

    /// The active data key version, read from the table.
    pub async fn active_version(&self) -> Result<u32, KeyringError> {
        Ok(self.keys(None).await?.active)
    }

    /// Creates data key 1 with `kms_key_id` unless the table already has a keyring; returns the
    /// active version. Safe to run twice, or from two processes at once.
    pub async fn create_first(&self, kms_key_id: &str, now: Timestamp) -> Result<u32, KeyringError> {
        if let Some(active) = read_active(&self.dynamodb, &self.table).await? {
            return Ok(active);
        }
        let (key_arn, ciphertext) = generate(&self.kms, kms_key_id, 1).await?;
        let writes = vec![
            put_new(&self.table, data_key_item(1, &key_arn, &ciphertext, now))?,
            put_new(&self.table, with_key((KEYRING.to_owned(), KEYRING_ACTIVE.to_owned()), [("version", n(1))]))?,
        ];
        match self.dynamodb.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => {
                tracing::info!(table = %self.table, "created data key 1");
                Ok(1)
            }
            // Another process created it first: theirs is the keyring.
            Err(error) => read_active(&self.dynamodb, &self.table)
                .await?
                .ok_or_else(|| keyring_unavailable("creating the first data key", error)),
        }
    }

    /// Generates a new data key with `kms_key_id` and makes it the active one; returns its
    /// version. Fails (changing nothing) if another rotation got there first.
    pub async fn rotate(&self, kms_key_id: &str, now: Timestamp) -> Result<u32, KeyringError> {
        let loaded = read_keyring(&self.dynamodb, &self.table).await?;
        let highest = loaded.wrapped.keys().next_back().copied().unwrap_or(loaded.active);
        let version = highest.checked_add(1).ok_or_else(|| KeyringError::Unavailable("no data key version is left".into()))?;
        let (key_arn, ciphertext) = generate(&self.kms, kms_key_id, version).await?;
        let activate = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key((KEYRING.to_owned(), KEYRING_ACTIVE.to_owned()))))
            .update_expression("SET #version = :new")
            .condition_expression("#version = :old")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":new", n(version))
            .expression_attribute_values(":old", n(loaded.active))
            .build()
            .map_err(|e| KeyringError::Unavailable(format!("building the rotation: {e}")))?;
        let writes = vec![
            put_new(&self.table, data_key_item(version, &key_arn, &ciphertext, now))?,
            aws_sdk_dynamodb::types::TransactWriteItem::builder().update(activate).build(),
        ];
        self.dynamodb
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(|e| keyring_unavailable("rotating the data key (did another rotation run at the same time?)", e))?;
        *self.loaded.write().await = None;
        tracing::info!(table = %self.table, version, "rotated: new secrets use the new data key");
        Ok(version)
    }
}

async fn generate(kms: &aws_sdk_kms::Client, kms_key_id: &str, version: u32) -> Result<(String, Vec<u8>), KeyringError> {
    let output = kms
        .generate_data_key()
        .key_id(kms_key_id)
        .key_spec(DataKeySpec::Aes256)
        .set_encryption_context(Some(encryption_context(version)))
        .send()
        .await
        .map_err(|e| keyring_unavailable(&format!("KMS GenerateDataKey with {kms_key_id}"), e))?;
    // The plaintext copy is dropped unused: the key is only ever stored wrapped, and decrypted
    // on use like any other version.
    let ciphertext = output.ciphertext_blob.ok_or_else(|| KeyringError::Unavailable("KMS returned no ciphertext".into()))?;
    let arn = output.key_id.unwrap_or_else(|| kms_key_id.to_owned());
    Ok((arn, ciphertext.into_inner()))
}

fn data_key_item(version: u32, kms_key_id: &str, ciphertext: &[u8], now: Timestamp) -> Item {
    with_key(
        (KEYRING.to_owned(), table::data_key_sort(version)),
        [("version", n(version)), ("kms_key_id", s(kms_key_id)), ("ciphertext", b(ciphertext)), ("created_at", n(now.unix()))],
    )
}

fn put_new(table: &str, item: Item) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, KeyringError> {
    let put = aws_sdk_dynamodb::types::Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", PK)
        .build()
        .map_err(|e| KeyringError::Unavailable(format!("building a keyring write: {e}")))?;
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build())
}

fn no_keyring(table: &str) -> KeyringError {
    KeyringError::Unavailable(format!("table {table} has no data key: run `squaremcp init` first"))
}

fn corrupt(why: impl std::fmt::Display) -> KeyringError {
    KeyringError::Unavailable(format!("the keyring in the table is corrupt: {why}"))
}

async fn read_active(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<Option<u32>, KeyringError> {
    let output = dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(key((KEYRING.to_owned(), KEYRING_ACTIVE.to_owned()))))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| keyring_unavailable("reading the keyring", e))?;
    match output.item.filter(|i| !i.is_empty()) {
        Some(item) => Reader::new(&item, "active data key").n("version").map(Some).map_err(corrupt),
        None => Ok(None),
    }
}

/// The whole keyring partition in one Query.
async fn read_keyring(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<Loaded, KeyringError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let output = dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", s(KEYRING))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| keyring_unavailable("reading the keyring", e))?;
        items.extend(output.items.unwrap_or_default());
        match output.last_evaluated_key {
            Some(last) if !last.is_empty() => start = Some(last),
            _ => break,
        }
    }
    let mut active = None;
    let mut wrapped = BTreeMap::new();
    for item in &items {
        let r = Reader::new(item, "keyring");
        let sort = r.s(SK).map_err(corrupt)?;
        if sort == KEYRING_ACTIVE {
            active = Some(r.n::<u32>("version").map_err(corrupt)?);
        } else if sort.starts_with(KEYRING_DATA_KEY_PREFIX) {
            let version: u32 = r.n("version").map_err(corrupt)?;
            let entry = Wrapped {
                kms_key_id: r.s("kms_key_id").map_err(corrupt)?.to_owned(),
                ciphertext: r.b("ciphertext").map_err(corrupt)?.to_vec(),
                key: OnceCell::new(),
            };
            wrapped.insert(version, entry);
        }
    }
    let active = active.ok_or_else(|| no_keyring(table))?;
    if !wrapped.contains_key(&active) {
        return Err(corrupt(format!("the active version {active} has no data key")));
    }
    Ok(Loaded { active, wrapped, missed_at: None })
}

#[async_trait]
impl Keyring for KmsKeyring {
    async fn seal(&self, binding: &SecretBinding, plaintext: &[u8]) -> Result<SealedSecret, KeyringError> {
        let loaded = self.keys(None).await?;
        self.data_key(&loaded, loaded.active).await?.seal(&binding.associated_data(), plaintext)
    }

    async fn open(&self, binding: &SecretBinding, sealed: &SealedSecret) -> Result<Secret<Vec<u8>>, KeyringError> {
        let loaded = self.keys(Some(sealed.key_version)).await?;
        self.data_key(&loaded, sealed.key_version).await?.open(&binding.associated_data(), sealed)
    }
}

