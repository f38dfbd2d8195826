//! Obsidian vaults: five tools on a vault of Markdown notes, behind one small trait ([`vault::Vault`])
//! with two backends:
//!
//! - **Directory** ([`vault::Directory`], for `squaremcp serve` and the container): the operator
//!   sets `SQUAREMCP_OBSIDIAN_ROOT`; the credential `{"vault": "NAME"}` selects
//!   `<root>/<customer id>/<NAME>`, kept in sync by Obsidian Sync (headless), git or Syncthing.
//!   The customer id comes from the gateway ([`squaremcp_core::tool::caller`]).
//! - **S3** ([`s3::S3Vault`], for the Lambdas): the objects under a bucket and prefix, the layout
//!   the Remotely Save plugin syncs a vault to; any S3-compatible store, signed with SigV4 over
//!   the shared reqwest stack (no AWS SDK: the mcp Lambda's size). The endpoint is a
//!   customer-supplied host, so it goes through the kit's SSRF guard.
//!
//! Safety for both: paths are vault-relative ([`paths::NotePath`]: no `..`, absolute paths, NUL,
//! backslashes or `.obsidian/` internals; symlinks leaving the vault refused), writes are atomic
//! (temp file + rename on disk; one PUT on S3) and conditional (content hash on disk, ETag with
//! `If-Match` on S3), so a concurrent change is reported as a conflict and never overwritten.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use squaremcp_core::{CustomerId, Platform};

use crate::kit::{CredentialDocument, PlatformEntry};

mod credential;
mod frontmatter;
mod paths;
mod s3;
mod search;
mod tools;
mod vault;

pub use s3::sigv4_signature;

/// The credential document's shape, shown in help texts and error messages. A directory vault
/// (`squaremcp serve` with `SQUAREMCP_OBSIDIAN_ROOT`) is `{"vault": "Notes"}` instead.
pub const CREDENTIAL_EXAMPLE: &str = r#"{"bucket": "my-notes", "prefix": "vault/", "region": "eu-west-1", "access_key_id": "AKIA…", "secret_access_key": "…"}"#;

/// What the operator configures for Obsidian (`SQUAREMCP_OBSIDIAN_ROOT`, `SQUAREMCP_OBSIDIAN_OB`,
/// `SQUAREMCP_OBSIDIAN_BUCKET`).
#[derive(Clone, Debug)]
pub struct ObsidianSettings {
    /// Where directory vaults live: `<root>/<customer id>/<vault>`. `None`: directory vaults are
    /// refused (the Lambdas have no such directory).
    pub root: Option<PathBuf>,
    /// The Obsidian Headless Sync CLI (`ob`); when set, `obsidian_sync_status` on a directory vault
    /// runs `<ob> sync-status --json` in the vault and returns its answer.
    pub ob_command: Option<PathBuf>,
    /// A search stops (reporting `stopped_by: "time"`) after this long.
    pub search_time_limit: Duration,
    /// A search stops (`stopped_by: "bytes"`) after reading this many bytes of notes.
    pub search_byte_limit: u64,
    /// The deployment's own bucket (`SQUAREMCP_OBSIDIAN_BUCKET`): where no `root` is set, the
    /// credential `{"vault": "NAME"}` is the prefix `<customer id>/<NAME>/` in it.
    pub deployment_bucket: Option<DeploymentBucket>,
}

impl Default for ObsidianSettings {
    fn default() -> Self {
        Self {
            root: None,
            ob_command: None,
            search_time_limit: Duration::from_secs(10),
            search_byte_limit: 256 * 1024 * 1024,
            deployment_bucket: None,
        }
    }
}

/// A bucket the operator runs for every customer's vaults, reached with keys that only reach
/// one customer's prefix: a mistake in this crate's path checks still cannot cross customers.
#[derive(Clone)]
pub struct DeploymentBucket {
    pub bucket: String,
    pub region: String,
    /// `scheme://host[:port]` of an S3-compatible store; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub keys: Arc<dyn VaultKeys>,
}

impl std::fmt::Debug for DeploymentBucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentBucket").field("bucket", &self.bucket).field("region", &self.region).field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// Temporary keys limited to one customer's prefix of the deployment's bucket (on AWS: STS
/// `AssumeRole` with a session policy).
#[async_trait]
pub trait VaultKeys: Send + Sync {
    async fn keys_for(&self, customer: &CustomerId) -> Result<TemporaryKeys, String>;
}

/// No `Debug`: the secret and the token must not reach a log.
#[derive(Clone)]
pub struct TemporaryKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Obsidian's row in the registration table. It has no HTTP origin: nothing to override.
pub static ENTRY: PlatformEntry = PlatformEntry {
    platform: Platform::Obsidian,
    origin: PlatformEntry::NO_ORIGIN,
    credential_example: CREDENTIAL_EXAMPLE,
    check_credential: |document| credential::VaultCredential::parse(document).map(drop),
    tools: tools::build,
    health_probe: Some("sync_status"),
    oauth: None,
    routing_key: None,
};
