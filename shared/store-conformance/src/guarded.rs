//! A store that keeps something alive as long as it lives: the scratch directory of a SQLite
//! file, say, so that a test's files go away with its store.

use std::sync::Arc;

use async_trait::async_trait;
use squaremcp_core::ports::{Page, PutMode};
use squaremcp_core::{
    AccountName, ApiKeyHash, ApiKeyId, ApiKeyRecord, CallRecord, CredentialRecord, Customer, CustomerId, Email,
    Platform, PlanName, SealedSecret, Store, StoreError, Timestamp,
};

/// Wraps `store` so that `guard` is dropped only after the store is.
pub fn guarded<G: Send + Sync + 'static>(store: impl Store + 'static, guard: G) -> Arc<dyn Store> {
    Arc::new(Guarded { store: Box::new(store), _guard: guard })
}

struct Guarded<G> {
    // Declared first, so dropped first: the store closes before its guard cleans up.
    store: Box<dyn Store>,
    _guard: G,
}

#[async_trait]
impl<G: Send + Sync> Store for Guarded<G> {
    async fn insert_customer(&self, customer: &Customer) -> Result<(), StoreError> {
        self.store.insert_customer(customer).await
    }
    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.store.customer(id).await
    }
    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError> {
        self.store.customer_by_email(email).await
    }
    async fn list_customers(&self, after: Option<&str>, limit: usize) -> Result<Page<Customer>, StoreError> {
        self.store.list_customers(after, limit).await
    }
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.store.insert_api_key(key).await
    }
    async fn api_key_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.store.api_key_by_hash(hash).await
    }
    async fn list_api_keys(&self, customer: &CustomerId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.store.list_api_keys(customer).await
    }
    async fn revoke_api_key(&self, customer: &CustomerId, id: &ApiKeyId, at: Timestamp) -> Result<bool, StoreError> {
        self.store.revoke_api_key(customer, id, at).await
    }
    async fn put_credential(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        self.store.put_credential(record).await
    }
    async fn credentials(
        &self,
        customer: &CustomerId,
        platform: Option<Platform>,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        self.store.credentials(customer, platform).await
    }
    async fn delete_credential(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: &AccountName,
    ) -> Result<bool, StoreError> {
        self.store.delete_credential(customer, platform, account).await
    }
    async fn swap_credential(&self, record: &CredentialRecord, expected: &SealedSecret) -> Result<bool, StoreError> {
        self.store.swap_credential(record, expected).await
    }
    async fn add_to_counter(&self, key: &str, delta: u64, limit: Option<u64>) -> Result<u64, StoreError> {
        self.store.add_to_counter(key, delta, limit).await
    }
    async fn counter(&self, key: &str) -> Result<u64, StoreError> {
        self.store.counter(key).await
    }
    async fn subtract_from_counter(&self, key: &str, delta: u64) -> Result<bool, StoreError> {
        self.store.subtract_from_counter(key, delta).await
    }
    async fn put_single_use(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.store.put_single_use(key, value, expires_at, now).await
    }
    async fn take_single_use(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.take_single_use(key, now).await
    }
    async fn put_item(
        &self,
        key: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        mode: PutMode,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.store.put_item(key, value, expires_at, mode, now).await
    }
    async fn get_item(&self, key: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get_item(key, now).await
    }
    async fn swap_item(
        &self,
        key: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.store.swap_item(key, expected, value, expires_at, now).await
    }
    async fn delete_item(&self, key: &str) -> Result<bool, StoreError> {
        self.store.delete_item(key).await
    }
    async fn set_customer_plan(&self, id: &CustomerId, plan: &PlanName) -> Result<bool, StoreError> {
        self.store.set_customer_plan(id, plan).await
    }
    async fn record_call(&self, record: &CallRecord, counter: Option<(&str, i64)>) -> Result<(), StoreError> {
        self.store.record_call(record, counter).await
    }
    async fn call_records(
        &self,
        customer: &CustomerId,
        from: Timestamp,
        until: Timestamp,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<CallRecord>, StoreError> {
        self.store.call_records(customer, from, until, limit, now).await
    }
}
