//! The DynamoDB store: one table (see [`crate::table`]), the same contract as SQLite, proven
//! by the same conformance suite.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Put, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
    WriteRequest,
};
use squaremcp_core::ports::{Page, PutMode};
use squaremcp_core::{
    AccountName, ApiKeyHash, ApiKeyId, ApiKeyRecord, CallRecord, CredentialRecord, Customer, CustomerId, Email,
    PlanName, Platform, SealedSecret, Store, StoreError, Timestamp,
};

use crate::error::{build_error, store_unavailable};
use crate::item::{Item, Reader, b, key, n, s, with_key};
use crate::table::{self, GSI1, GSI1PK, GSI1SK, PK, SK, TTL_ATTRIBUTE};

/// DynamoDB's limit of items per `BatchWriteItem`.
pub const BATCH_WRITE_LIMIT: usize = 25;
/// Attempts of a transaction that lost to a concurrent one on the same item.
const TRANSACTION_ATTEMPTS: u32 = 4;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// What one write of a transaction found, in the order the writes were given.
enum Cancelled {
    /// The condition of the write at this index failed.
    Condition(usize),
    Other(StoreError),
}

impl DynamoStore {
    /// No request is sent: the table is expected to exist (`squaremcp init` creates it).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Unconditional puts of many items (append-only records such as usage and audit
    /// entries), in requests of at most 25 items; items DynamoDB leaves unprocessed under
    /// throttling are sent again with backoff.
    pub async fn put_batch(&self, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in chunks(items, BATCH_WRITE_LIMIT) {
            let mut pending: Vec<WriteRequest> = chunk
                .into_iter()
                .map(|item| PutRequest::builder().set_item(Some(item)).build().map(|put| WriteRequest::builder().put_request(put).build()))
                .collect::<Result<_, _>>()
                .map_err(build_error)?;
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| store_unavailable("BatchWriteItem", e))?;
                pending = output.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::Unavailable(format!("DynamoDB left {} items unprocessed after 8 retries", pending.len())));
                    }
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                }
            }
        }
        Ok(())
    }

    async fn get(&self, pk_sk: (String, String)) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk_sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_unavailable("GetItem", e))?;
        Ok(output.item.filter(|item| !item.is_empty()))
    }

    /// An unconditional delete; `true` when there was an item.
    async fn delete(&self, pk: String, sk: String) -> Result<bool, StoreError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key((pk, sk))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_unavailable("DeleteItem", e))?;
        Ok(output.attributes.is_some_and(|old| !old.is_empty()))
    }

    /// Every page of a query.
    async fn query(&self, query: impl Fn() -> QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = query().set_exclusive_start_key(start).send().await.map_err(|e| store_unavailable("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(items),
            }
        }
    }

    /// One `UpdateItem` `ADD`, conditional on the limit; with an expiry, it also sets the TTL.
    async fn add(&self, key_name: &str, delta: u64, limit: Option<u64>, expires_at: Option<Timestamp>) -> Result<u64, StoreError> {
        // No value passes a limit smaller than the delta itself; DynamoDB would accept a first add.
        if let Some(limit) = limit
            && delta > limit
        {
            return Err(StoreError::LimitReached { current: self.counter(key_name).await?, limit });
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(table::counter(key_name))))
            .update_expression(if expires_at.is_some() { "ADD #value :delta SET #expires = :expires" } else { "ADD #value :delta" })
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":delta", n(delta))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(expires_at) = expires_at {
            // The table's TTL attribute: DynamoDB deletes the counter some time after.
            update = update
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_values(":expires", n(expires_at.unix()));
        }
        if let Some(limit) = limit {
            // One atomic conditional add: exact under any concurrency.
            update = update
                .condition_expression("attribute_not_exists(#value) OR #value <= :most")
                .expression_attribute_values(":most", n(limit - delta));
        }
        match send_counter_update(update).await {
            Ok(output) => {
                let value = output.attributes.as_ref().map(|a| Reader::new(a, "counter").n("value")).transpose()?;
                value.ok_or_else(|| StoreError::Corrupt(format!("adding to counter {key_name} returned no value")))
            }
            Err(SdkError::ServiceError(context)) if context.err().is_conditional_check_failed_exception() => {
                let current = match context.err() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                        counter_value(e.item.as_ref())?
                    }
                    _ => 0,
                };
                Err(StoreError::LimitReached { current, limit: limit.unwrap_or(0) })
            }
            Err(error) => Err(store_unavailable("UpdateItem", error)),
        }
    }

    /// Runs a transaction, again when it lost to a concurrent one on the same items.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<(), Cancelled> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.client.transact_write_items().set_transact_items(Some(writes.clone())).send().await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if let SdkError::ServiceError(context) = &error
                && let TransactWriteItemsError::TransactionCanceledException(cancelled) = context.err()
            {
                let codes: Vec<&str> = cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
                if let Some(index) = codes.iter().position(|code| *code == "ConditionalCheckFailed") {
                    return Err(Cancelled::Condition(index));
                }
                if codes.contains(&"TransactionConflict") && attempt < TRANSACTION_ATTEMPTS {
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                    continue;
                }
            }
            return Err(Cancelled::Other(store_unavailable("TransactWriteItems", error)));
        }
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).set_condition_expression(condition.map(str::to_owned));
        let put = if condition.is_some_and(|c| c.contains("#pk")) { put.expression_attribute_names("#pk", PK) } else { put };
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build())
    }

    /// A check that `pk_sk` exists, as part of a transaction (the customer a record hangs off).
    fn exists(&self, pk_sk: (String, String)) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk_sk)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// Splits `items` into runs of at most `size`.
fn chunks<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut chunks = Vec::with_capacity(items.len().div_ceil(size.max(1)));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(size.max(1)).collect());
    }
    chunks
}

/// Records hang off an existing customer; the port has no "not found" error (as in SQLite).
fn missing_customer(customer: &CustomerId) -> StoreError {
    StoreError::Unavailable(format!("customer {customer} does not exist"))
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(error: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> bool {
    matches!(error, SdkError::ServiceError(context) if context.err().code() == Some("ConditionalCheckFailedException"))
}

/// Attempts of a counter update that DynamoDB throttled.
const COUNTER_ATTEMPTS: u32 = 3;

/// Sends a counter's `ADD` without the SDK's retries. An `ADD` is not idempotent: when an
/// attempt times out or its answer is lost (a 500, a reset connection), DynamoDB may have
/// applied it, and the SDK's retry would add again, counting one tool call or login attempt
/// twice. A conditional, idempotent form needs a read before every write (or a token the item
/// would have to keep for every add), which the tools/call path cannot afford; so only the
/// answers that say the write was *not* applied, throttling, are retried here, and anything
/// else is the caller's error, the counter possibly a unit high, never counted twice silently.
/// (Call records' counter changes go through `TransactWriteItems`, which the SDK makes
/// idempotent with its client request token, so they keep the SDK's retries.)
async fn send_counter_update(
    update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<
    aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
    SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
> {
    let no_retries = aws_sdk_dynamodb::config::Builder::default().retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled());
    let mut attempt = 0;
    loop {
        attempt += 1;
        match update.clone().customize().config_override(no_retries.clone()).send().await {
            Err(error) if is_throttling(&error) && attempt < COUNTER_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            result => return result,
        }
    }
}

/// DynamoDB refused the request before applying it (capacity or request-rate limits).
fn is_throttling<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(error: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> bool {
    matches!(
        error,
        SdkError::ServiceError(context)
            if matches!(context.err().code(), Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded"))
    )
}

fn customer_item(customer: &Customer) -> Item {
    let mut item = with_key(
        table::customer(customer.id.as_str()),
        [
            ("id", s(customer.id.as_str())),
            ("email", s(customer.email.as_str())),
            ("plan", s(customer.plan.as_str())),
            ("created_at", n(customer.created_at.unix())),
            (GSI1PK, s(table::CUSTOMERS_INDEX)),
            (GSI1SK, s(customer.id.as_str())),
        ],
    );
    if let Some(hash) = &customer.password_hash {
        item.insert("password_hash".to_owned(), s(hash.as_str()));
    }
    item
}

fn read_customer(item: &Item) -> Result<Customer, StoreError> {
    let r = Reader::new(item, "customer");
    Ok(Customer {
        id: r.parsed("id", CustomerId::parse)?,
        email: r.parsed("email", Email::parse)?,
        plan: r.parsed("plan", PlanName::parse)?,
        password_hash: r.opt_s("password_hash")?.map(str::to_owned),
        created_at: Timestamp::from_unix(r.n("created_at")?),
    })
}

fn api_key_item(key: &ApiKeyRecord) -> Item {
    let mut item = with_key(
        table::api_key(key.hash.as_str()),
        [
            ("id", s(key.id.as_str())),
            ("customer_id", s(key.customer_id.as_str())),
            ("name", s(key.name.as_str())),
            ("hash", s(key.hash.as_str())),
            ("prefix", s(key.prefix.as_str())),
            ("created_at", n(key.created_at.unix())),
            (GSI1PK, s(table::api_keys_index(key.customer_id.as_str()))),
            (GSI1SK, s(table::api_keys_index_sort(key.created_at.unix(), key.id.as_str()))),
        ],
    );
    if let Some(at) = key.revoked_at {
        item.insert("revoked_at".to_owned(), n(at.unix()));
    }
    item
}

fn read_api_key(item: &Item) -> Result<ApiKeyRecord, StoreError> {
    let r = Reader::new(item, "API key");
    Ok(ApiKeyRecord {
        id: r.parsed("id", ApiKeyId::parse)?,
        customer_id: r.parsed("customer_id", CustomerId::parse)?,
        name: r.s("name")?.to_owned(),
        hash: ApiKeyHash::from_stored(r.s("hash")?.to_owned()),
        prefix: r.s("prefix")?.to_owned(),
        created_at: Timestamp::from_unix(r.n("created_at")?),
        revoked_at: r.opt_n("revoked_at")?.map(Timestamp::from_unix),
    })
}

fn credential_item(record: &CredentialRecord) -> Item {
    with_key(
        (
            table::credentials_partition(record.customer_id.as_str()),
            table::credential_sort(record.platform.as_str(), record.account.as_str()),
        ),
        [
            // Written for people reading the table and for older readers; never read back
            // (see `read_credential`).
            ("customer_id", s(record.customer_id.as_str())),
            ("platform", s(record.platform.as_str())),
            ("account", s(record.account.as_str())),
            ("key_version", n(record.sealed.key_version)),
            ("nonce", b(&record.sealed.nonce)),
            ("ciphertext", b(&record.sealed.ciphertext)),
            ("created_at", n(record.created_at.unix())),
            ("updated_at", n(record.updated_at.unix())),
        ],
    )
}

/// Owner, platform and account come from the item's keys, never from its other attributes: an
/// item copied under another customer's keys (attributes and all) reads as that customer's, and
/// its sealed secret, bound to the original keys, does not open there.
fn read_credential(item: &Item) -> Result<CredentialRecord, StoreError> {
    let r = Reader::new(item, "credential");
    let (customer_id, platform, account) = table::parse_credential_keys(r.s(PK)?, r.s(SK)?)
        .ok_or_else(|| StoreError::Corrupt("credential: its keys are not those of a credential".into()))?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("credential: the {what} in its keys: {e}"));
    Ok(CredentialRecord {
        customer_id: CustomerId::parse(customer_id).map_err(|e| corrupt("customer id", &e))?,
        platform: platform.parse::<Platform>().map_err(|e| corrupt("platform", &e))?,
        account: AccountName::parse(account).map_err(|e| corrupt("account", &e))?,
        sealed: SealedSecret {
            key_version: r.n("key_version")?,
            nonce: r.b("nonce")?.to_vec(),
            ciphertext: r.b("ciphertext")?.to_vec(),
        },
        created_at: Timestamp::from_unix(r.n("created_at")?),
        updated_at: Timestamp::from_unix(r.n("updated_at")?),
    })
}

/// A live value: `None` once `now >= expires_at` (DynamoDB's TTL deletes late).
fn live_value(item: Option<Item>, now: Timestamp, kind: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(item) = item else { return Ok(None) };
    let r = Reader::new(&item, kind);
    if r.opt_n::<i64>(TTL_ATTRIBUTE)?.is_some_and(|expires_at| expires_at <= now.unix()) {
        return Ok(None);
    }
    Ok(Some(r.b("value")?.to_vec()))
}

fn value_item(pk_sk: (String, String), value: &[u8], expires_at: Option<Timestamp>) -> Item {
    let mut item = with_key(pk_sk, [("value", b(value))]);
    if let Some(at) = expires_at {
        item.insert(TTL_ATTRIBUTE.to_owned(), n(at.unix()));
    }
    item
}

fn counter_value(item: Option<&Item>) -> Result<u64, StoreError> {
    match item {
        Some(item) => Ok(Reader::new(item, "counter").opt_n("value")?.unwrap_or(0)),
        None => Ok(0),
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn insert_customer(&self, customer: &Customer) -> Result<(), StoreError> {
        let guard = with_key(table::email_guard(customer.email.as_str()), [("customer_id", s(customer.id.as_str()))]);
        let writes = vec![
            self.put(customer_item(customer), Some("attribute_not_exists(#pk)"))?,
            self.put(guard, Some("attribute_not_exists(#pk)"))?,
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Condition(0)) => Err(StoreError::Conflict(format!("customer {}", customer.id))),
            Err(Cancelled::Condition(_)) => {
                Err(StoreError::Conflict(format!("a customer with the email {}", customer.email.as_str())))
            }
            Err(Cancelled::Other(error)) => Err(error),
        }
    }

    async fn customer(&self, id: &CustomerId) -> Result<Option<Customer>, StoreError> {
        self.get(table::customer(id.as_str())).await?.as_ref().map(read_customer).transpose()
    }

    async fn customer_by_email(&self, email: &Email) -> Result<Option<Customer>, StoreError> {
        let Some(guard) = self.get(table::email_guard(email.as_str())).await? else { return Ok(None) };
        let id = Reader::new(&guard, "email guard").parsed("customer_id", CustomerId::parse)?;
        self.customer(&id).await
    }

    async fn list_customers(&self, after: Option<&str>, limit: usize) -> Result<Page<Customer>, StoreError> {
        let page_size = limit.max(1);
        let wanted = page_size.saturating_add(1);
        let mut items = Vec::new();
        let mut start = None;
        // The index is ordered by id; one item more than the page tells whether another exists.
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .expression_attribute_names("#pk", GSI1PK)
                .expression_attribute_values(":pk", s(table::CUSTOMERS_INDEX))
                .limit(i32::try_from(wanted - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            query = match after {
                Some(after) => query
                    .key_condition_expression("#pk = :pk AND #sk > :after")
                    .expression_attribute_names("#sk", GSI1SK)
                    .expression_attribute_values(":after", s(after)),
                None => query.key_condition_expression("#pk = :pk"),
            };
            let output = query.send().await.map_err(|e| store_unavailable("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() && items.len() < wanted => start = Some(last),
                _ => break,
            }
        }
        let mut customers = items.iter().map(read_customer).collect::<Result<Vec<_>, _>>()?;
        let next = if customers.len() > page_size {
            customers.truncate(page_size);
            customers.last().map(|c| c.id.as_str().to_owned())
        } else {
            None
        };
        Ok(Page { items: customers, next })
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let guard = with_key(
            table::api_key_id_guard(key.id.as_str()),
            [("customer_id", s(key.customer_id.as_str())), ("hash", s(key.hash.as_str()))],
        );
        let writes = vec![
            self.exists(table::customer(key.customer_id.as_str()))?,
            self.put(api_key_item(key), Some("attribute_not_exists(#pk)"))?,
            self.put(guard, Some("attribute_not_exists(#pk)"))?,
        ];
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Condition(0)) => Err(missing_customer(&key.customer_id)),
            Err(Cancelled::Condition(1)) => Err(StoreError::Conflict("an API key with the same hash".into())),
            Err(Cancelled::Condition(_)) => Err(StoreError::Conflict(format!("API key {}", key.id))),
            Err(Cancelled::Other(error)) => Err(error),
        }
    }

    async fn api_key_by_hash(&self, hash: &ApiKeyHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(table::api_key(hash.as_str())).await?.as_ref().map(read_api_key).transpose()
    }

    async fn list_api_keys(&self, customer: &CustomerId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let partition = table::api_keys_index(customer.as_str());
        let items = self
            .query(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI1)
                    .key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", GSI1PK)
                    .expression_attribute_values(":pk", s(partition.as_str()))
            })
            .await?;
        items.iter().map(read_api_key).collect()
    }

    async fn revoke_api_key(&self, customer: &CustomerId, id: &ApiKeyId, at: Timestamp) -> Result<bool, StoreError> {
        let Some(guard) = self.get(table::api_key_id_guard(id.as_str())).await? else { return Ok(false) };
        let guard = Reader::new(&guard, "API key id guard");
        if guard.s("customer_id")? != customer.as_str() {
            return Ok(false);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(table::api_key(guard.s("hash")?))))
            .update_expression("SET #revoked = :at")
            .condition_expression("#customer = :customer AND attribute_not_exists(#revoked)")
            .expression_attribute_names("#revoked", "revoked_at")
            .expression_attribute_names("#customer", "customer_id")
            .expression_attribute_values(":at", n(at.unix()))
            .expression_attribute_values(":customer", s(customer.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_unavailable("UpdateItem", error)),
        }
    }

    async fn put_credential(&self, record: &CredentialRecord) -> Result<(), StoreError> {
        let writes = vec![self.exists(table::customer(record.customer_id.as_str()))?, self.put(credential_item(record), None)?];
        match self.transact(writes).await {
            Ok(()) => Ok(()),
            Err(Cancelled::Condition(_)) => Err(missing_customer(&record.customer_id)),
            Err(Cancelled::Other(error)) => Err(error),
        }
    }

    async fn credentials(
        &self,
        customer: &CustomerId,
        platform: Option<Platform>,
    ) -> Result<Vec<CredentialRecord>, StoreError> {
        let partition = table::credentials_partition(customer.as_str());
        let prefix = table::credentials_prefix(platform.map(Platform::as_str));
        let items = self
            .query(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#sk", SK)
                    .expression_attribute_values(":pk", s(partition.as_str()))
                    .expression_attribute_values(":prefix", s(prefix.as_str()))
                    .consistent_read(true)
            })
            .await?;
        items.iter().map(read_credential).collect()
    }

    async fn delete_credential(
        &self,
        customer: &CustomerId,
        platform: Platform,
        account: &AccountName,
    ) -> Result<bool, StoreError> {
        self.delete(table::credentials_partition(customer.as_str()), table::credential_sort(platform.as_str(), account.as_str()))
            .await
    }

    async fn swap_credential(&self, record: &CredentialRecord, expected: &SealedSecret) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(credential_item(record)))
            .condition_expression("#version = :version AND #nonce = :nonce AND #ciphertext = :ciphertext")
            .expression_attribute_names("#version", "key_version")
            .expression_attribute_names("#nonce", "nonce")
            .expression_attribute_names("#ciphertext", "ciphertext")
            .expression_attribute_values(":version", n(expected.key_version))
            .expression_attribute_values(":nonce", b(&expected.nonce))
            .expression_attribute_values(":ciphertext", b(&expected.ciphertext))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_unavailable("PutItem", error)),
        }
    }

    async fn add_to_counter(&self, key_name: &str, delta: u64, limit: Option<u64>) -> Result<u64, StoreError> {
        self.add(key_name, delta, limit, None).await
    }

    async fn add_to_expiring_counter(
        &self,
        key_name: &str,
        delta: u64,
        limit: Option<u64>,
        expires_at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.add(key_name, delta, limit, Some(expires_at)).await
    }

    async fn counter(&self, key_name: &str) -> Result<u64, StoreError> {
        counter_value(self.get(table::counter(key_name)).await?.as_ref())
    }

    async fn subtract_from_counter(&self, key_name: &str, delta: u64) -> Result<bool, StoreError> {
        if delta == 0 {
            return Ok(true);
        }
        let negative = i64::try_from(delta)
            .map(|d| -d)
            .map_err(|_| StoreError::Unavailable(format!("counter delta {delta} is out of range")))?;
        // One atomic conditional add of `-delta`: the condition keeps the counter at or above zero
        // (and fails on a missing counter, which holds zero).
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(table::counter(key_name))))
            .update_expression("ADD #value :delta")
            .condition_expression("#value >= :least")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":delta", n(negative))
            .expression_attribute_values(":least", n(delta));
        let result = send_counter_update(update).await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_unavailable("UpdateItem", error)),
        }
    }

    async fn put_single_use(&self, key_name: &str, value: &[u8], expires_at: Timestamp, now: Timestamp) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(value_item(table::single_use(key_name), value, Some(expires_at))))
            .condition_expression("attribute_not_exists(#pk) OR #expires <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.unix()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Err(StoreError::Conflict(format!("single-use item {key_name}"))),
            Err(error) => Err(store_unavailable("PutItem", error)),
        }
    }

    async fn take_single_use(&self, key_name: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        // A conditional delete: of two concurrent takers, exactly one deletes a live item.
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(table::single_use(key_name))))
            .condition_expression("#expires > :now")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.unix()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => live_value(output.attributes.filter(|a| !a.is_empty()), now, "single-use item"),
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(store_unavailable("DeleteItem", error)),
        }
    }

    async fn put_item(
        &self,
        key_name: &str,
        value: &[u8],
        expires_at: Option<Timestamp>,
        mode: PutMode,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let put = self.client.put_item().table_name(&self.table).set_item(Some(value_item(table::item(key_name), value, expires_at)));
        let put = match mode {
            PutMode::Replace => put,
            // An expired item counts as absent.
            PutMode::CreateOnly => put
                .condition_expression("attribute_not_exists(#pk) OR #expires <= :now")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#expires", TTL_ATTRIBUTE)
                .expression_attribute_values(":now", n(now.unix())),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Err(StoreError::Conflict(format!("item {key_name}"))),
            Err(error) => Err(store_unavailable("PutItem", error)),
        }
    }

    async fn get_item(&self, key_name: &str, now: Timestamp) -> Result<Option<Vec<u8>>, StoreError> {
        live_value(self.get(table::item(key_name)).await?, now, "item")
    }

    async fn swap_item(
        &self,
        key_name: &str,
        expected: &[u8],
        value: &[u8],
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(value_item(table::item(key_name), value, expires_at)))
            .condition_expression("#value = :expected AND (attribute_not_exists(#expires) OR #expires > :now)")
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#expires", TTL_ATTRIBUTE)
            .expression_attribute_values(":expected", b(expected))
            .expression_attribute_values(":now", n(now.unix()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_unavailable("PutItem", error)),
        }
    }

    async fn delete_item(&self, key_name: &str) -> Result<bool, StoreError> {
        let (pk, sk) = table::item(key_name);
        self.delete(pk, sk).await
    }

    async fn set_customer_plan(&self, id: &CustomerId, plan: &PlanName) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(table::customer(id.as_str()))))
            .update_expression("SET #plan = :plan")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#plan", "plan")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":plan", s(plan.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_condition_failure(&error) => Ok(false),
            Err(error) => Err(store_unavailable("UpdateItem", error)),
        }
    }

    async fn record_call(&self, record: &CallRecord, counter: Option<(&str, i64)>) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let item = with_key(
            table::call_record(record.customer_id.as_str(), &record.id),
            [("record", s(json)), ("at", n(record.at.unix())), (TTL_ATTRIBUTE, n(record.expires_at.unix()))],
        );
        let put = self.put(item, Some("attribute_not_exists(#pk)"))?;
        let Some((key_name, delta)) = counter else {
            return match self.transact(vec![put]).await {
                Ok(()) => Ok(()),
                Err(Cancelled::Condition(_)) => Err(StoreError::Conflict(format!("call record {}", record.id))),
                Err(Cancelled::Other(error)) => Err(error),
            };
        };
        // The record and its counter change in one transaction: one round trip, all or nothing.
        // A negative change is conditional, so that a counter never goes below zero.
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(table::counter(key_name))))
            .update_expression("ADD #value :delta")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":delta", n(delta));
        if delta < 0 {
            update = update.condition_expression("#value >= :least").expression_attribute_values(":least", n(delta.unsigned_abs()));
        }
        let update = TransactWriteItem::builder().update(update.build().map_err(build_error)?).build();
        match self.transact(vec![put.clone(), update]).await {
            Ok(()) => Ok(()),
            // The counter is already lower than the refund: keep the record, leave the counter.
            Err(Cancelled::Condition(1)) => match self.transact(vec![put]).await {
                Ok(()) => Ok(()),
                Err(Cancelled::Condition(_)) => Err(StoreError::Conflict(format!("call record {}", record.id))),
                Err(Cancelled::Other(error)) => Err(error),
            },
            Err(Cancelled::Condition(_)) => Err(StoreError::Conflict(format!("call record {}", record.id))),
            Err(Cancelled::Other(error)) => Err(error),
        }
    }

    async fn call_records(
        &self,
        customer: &CustomerId,
        from: Timestamp,
        until: Timestamp,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let mut records = Vec::new();
        let mut start = None;
        // Newest first; expired records are skipped here, since TTL deletes them late.
        while records.len() < limit {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :until")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(table::credentials_partition(customer.as_str())))
                .expression_attribute_values(":from", s(table::call_records_from(from.unix())))
                // Every id of a second starts with `<second>.`, so the bound excludes `until` itself.
                .expression_attribute_values(":until", s(table::call_records_from(until.unix())))
                .scan_index_forward(false)
                .limit(i32::try_from((limit - records.len()).min(1_000)).unwrap_or(1_000))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_unavailable("Query", e))?;
            for item in output.items.unwrap_or_default() {
                let r = Reader::new(&item, "call record");
                if r.opt_n::<i64>(TTL_ATTRIBUTE)?.is_some_and(|expires_at| expires_at <= now.unix()) {
                    continue;
                }
                let record = serde_json::from_str(r.s("record")?).map_err(|e| StoreError::Corrupt(format!("call record: {e}")))?;
                records.push(record);
            }
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        records.truncate(limit);
        Ok(records)
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_chunked_at_25() {
        let sizes: Vec<usize> = chunks((0..60).collect::<Vec<_>>(), BATCH_WRITE_LIMIT).iter().map(Vec::len).collect();
        assert_eq!(sizes, [25, 25, 10]);
        assert!(chunks(Vec::<u8>::new(), BATCH_WRITE_LIMIT).is_empty());
        assert_eq!(chunks(vec![1; 25], BATCH_WRITE_LIMIT).len(), 1);
    }
}
