//! `squaremcp customers revoke-sessions|disable|enable`: ending a compromise from the operator's
//! side.
//!
//! - `revoke-sessions` ends every session cookie, OAuth grant (refresh and access tokens) and
//!   operator-minted JWT of the customer; API keys are untouched (revoke those one by one with
//!   `api-keys revoke`, or use `disable`).
//! - `disable` does that, revokes every active API key, and refuses sign-in, sign-up links,
//!   reset links and new OAuth grants until `enable`.
//! - `enable` lets the customer sign in again; nothing revoked comes back (new keys are created
//!   with `api-keys create`, MCP clients connect again).

use std::sync::Arc;

use serde_json::json;
use squaremcp_auth::standing;
use squaremcp_core::{CustomerId, Gateway};

use crate::admin::CliError;
use crate::output::Printer;

pub async fn revoke_sessions(
    gateway: &Arc<Gateway>,
    customer: &str,
    out: Printer,
) -> Result<(), CliError> {
    let customer = CustomerId::parse(customer)?;
    gateway.require_customer(&customer).await?;
    let standing = standing::revoke_sessions(gateway.store(), gateway.now(), &customer).await?;
    out.print(&json!({"id": customer.as_str(), "generation": standing.generation, "disabled": standing.disabled}), || {
        format!("Every session and OAuth grant of {customer} is revoked (generation {}). API keys still work.", standing.generation)
    });
    Ok(())
}

pub async fn disable(gateway: &Arc<Gateway>, customer: &str, out: Printer) -> Result<(), CliError> {
    let customer = CustomerId::parse(customer)?;
    gateway.require_customer(&customer).await?;
    let standing = standing::disable(gateway.store(), gateway.now(), &customer).await?;
    let mut revoked_keys = 0;
    for key in gateway
        .store()
        .list_api_keys(&customer)
        .await?
        .iter()
        .filter(|k| k.is_active())
    {
        if gateway.revoke_api_key(&customer, &key.id).await? {
            revoked_keys += 1;
        }
    }
    out.print(
        &json!({"id": customer.as_str(), "generation": standing.generation, "disabled": true, "api_keys_revoked": revoked_keys}),
        || format!("Disabled {customer}: sign-in refused, sessions and OAuth grants revoked, {revoked_keys} API key(s) revoked."),
    );
    Ok(())
}

pub async fn enable(gateway: &Arc<Gateway>, customer: &str, out: Printer) -> Result<(), CliError> {
    let customer = CustomerId::parse(customer)?;
    gateway.require_customer(&customer).await?;
    let standing = standing::enable(gateway.store(), gateway.now(), &customer).await?;
    out.print(&json!({"id": customer.as_str(), "generation": standing.generation, "disabled": false}), || {
        format!("Enabled {customer}: they can sign in again. Revoked API keys and grants stay revoked.")
    });
    Ok(())
}
