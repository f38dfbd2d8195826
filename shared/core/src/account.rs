//! What a customer sees of their own account: plan, this month's usage against the limit,
//! invoices, API keys with their last use. The account page and the CLI read it from here.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::billing::{Invoice, Month, Plan, run::invoice_key, usage_counter_key};
use crate::gateway::GatewayError;
use crate::{ApiKeyId, ApiKeyRecord, Customer, CustomerId, Gateway, PutMode, Timestamp};

/// How many past months of invoices the account page looks up.
pub const INVOICE_MONTHS: usize = 12;
/// A key's last use is written at most this often (per key and process).
pub const KEY_USE_RESOLUTION_SECONDS: u64 = 3600;

/// A customer's account at a glance.
#[derive(Clone, Debug)]
pub struct AccountOverview {
    pub customer: Customer,
    /// `None` when the customer's plan is no longer offered.
    pub plan: Option<Plan>,
    pub month: Month,
    /// Calls counted this month.
    pub used: u64,
    /// The first day of next month, when the count starts again (`YYYY-MM-DD`).
    pub resets_on: String,
    /// Newest first.
    pub invoices: Vec<Invoice>,
    /// Newest first, revoked ones included.
    pub keys: Vec<ApiKeyView>,
}

#[derive(Clone, Debug)]
pub struct ApiKeyView {
    pub record: ApiKeyRecord,
    /// To within [`KEY_USE_RESOLUTION_SECONDS`]; `None` when never used since this was tracked.
    pub last_used_at: Option<Timestamp>,
}

fn key_used_key(id: &ApiKeyId) -> String {
    format!("apikey#used#{}", id.as_str())
}

/// When this process last wrote each key's use.
fn written_uses() -> &'static Mutex<HashMap<String, Instant>> {
    static WRITTEN: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    WRITTEN.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Gateway {
    pub async fn account_overview(&self, customer: &CustomerId) -> Result<AccountOverview, GatewayError> {
        let customer = self.require_customer(customer).await?;
        let now = self.now();
        let month = Month::of(now);
        let used = self.store().counter(&usage_counter_key(&customer.id, month)).await?;
        let mut invoices = Vec::new();
        let mut past = month;
        for _ in 0..INVOICE_MONTHS {
            past = past.previous();
            if let Some(bytes) = self.store().get_item(&invoice_key(&customer.id, past), now).await?
                && let Ok(invoice) = serde_json::from_slice::<Invoice>(&bytes)
            {
                invoices.push(invoice);
            }
        }
        let mut keys = Vec::new();
        let mut records = self.store().list_api_keys(&customer.id).await?;
        records.sort_by_key(|record| std::cmp::Reverse(record.created_at));
        for record in records {
            let last_used_at = self
                .store()
                .get_item(&key_used_key(&record.id), now)
                .await?
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| text.parse::<i64>().ok())
                .map(Timestamp::from_unix);
            keys.push(ApiKeyView { record, last_used_at });
        }
        Ok(AccountOverview {
            plan: self.plans().get(&customer.plan).cloned(),
            customer,
            month,
            used,
            resets_on: month.next().first_day(),
            invoices,
            keys,
        })
    }

    /// Revokes one of the customer's keys; it stops working at once in this process, and
    /// within the key cache's lifetime in others (`key_cache.rs`). `false` when the customer
    /// has no such active key.
    pub async fn revoke_api_key(&self, customer: &CustomerId, id: &ApiKeyId) -> Result<bool, GatewayError> {
        let revoked = self.store().revoke_api_key(customer, id, self.now()).await?;
        self.forget_cached_key(id);
        Ok(revoked)
    }

    /// Notes that a key was used, at most once an hour per key and process; a failed write
    /// is logged and the request goes on.
    pub(crate) async fn note_key_use(&self, id: &ApiKeyId) {
        let due = written_uses().lock().is_ok_and(|mut written| {
            let fresh = written
                .get(id.as_str())
                .is_some_and(|at| at.elapsed().as_secs() < KEY_USE_RESOLUTION_SECONDS);
            if !fresh {
                if written.len() > 100_000 {
                    written.clear();
                }
                written.insert(id.as_str().to_owned(), Instant::now());
            }
            !fresh
        });
        if !due {
            return;
        }
        let now = self.now();
        let value = now.unix().to_string();
        if let Err(e) = self.store().put_item(&key_used_key(id), value.as_bytes(), None, PutMode::Replace, now).await {
            tracing::warn!(key = id.as_str(), error = %e, "key use not noted");
        }
    }
}
