//! Re-encrypting stored credentials under the active data key, while the gateway runs: after a
//! rotation, old records still open (their key version is kept), and this moves them to the
//! new version so that the old data key can eventually be retired. It also moves records
//! sealed with the v1 binding (no account, see `SecretBinding`) to v2.

use crate::{AccountName, BindingVersion, CredentialRecord, CustomerId, Keyring, Platform, Store, StoreError};

/// What a rewrap did, record by record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    pub examined: usize,
    /// Sealed again under the active data key and swapped in.
    pub rewrapped: usize,
    /// Already under the active data key: left as they were.
    pub current: usize,
    /// Changed by someone else between read and write (e.g. `credentials set`): left to them.
    pub changed_meanwhile: usize,
    /// Could not be opened (corrupt, or sealed with a data key the keyring no longer has).
    pub failed: Vec<(CustomerId, Platform, AccountName)>,
}

/// Every credential of every customer, re-sealed under the active data key by compare-and-swap,
/// so that a concurrent write is never undone. `progress(done, total)` is called after each
/// record. Running it again finds nothing left to do.
pub async fn rewrap_credentials(
    store: &dyn Store,
    keyring: &dyn Keyring,
    mut progress: impl FnMut(usize, usize),
) -> Result<RewrapReport, StoreError> {
    let mut records: Vec<CredentialRecord> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_customers(after.as_deref(), 100).await?;
        for customer in &page.items {
            records.extend(store.credentials(&customer.id, None).await?);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let total = records.len();
    let mut report = RewrapReport { examined: total, ..RewrapReport::default() };
    progress(0, total);
    for (done, record) in records.into_iter().enumerate() {
        // Always sealed with the current binding format (v2), whatever the record opened with.
        let resealed = match record.open_versioned(keyring).await {
            Ok((plaintext, version)) => keyring.seal(&record.binding(), plaintext.expose()).await.ok().map(|s| (s, version)),
            Err(_) => None,
        };
        match resealed {
            None => {
                tracing::warn!(customer = %record.customer_id, platform = %record.platform, "a credential could not be re-encrypted");
                report.failed.push((record.customer_id.clone(), record.platform, record.account.clone()));
            }
            Some((sealed, BindingVersion::V2)) if sealed.key_version == record.sealed.key_version => report.current += 1,
            Some((sealed, _)) => {
                let rewrapped = CredentialRecord { sealed, ..record.clone() };
                if store.swap_credential(&rewrapped, &record.sealed).await? {
                    report.rewrapped += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
        }
        progress(done + 1, total);
    }
    Ok(report)
}
