//! `squaremcp init` for AWS (or an emulator): creates the table, the KMS key and its alias,
//! the retry queue and its dead-letter queue, and the first data key — each only if missing,
//! so running it again changes nothing. The definitions match `template.yaml` and
//! `localstack/init.sh` (checked by `scripts/check-resources.py` on every test run).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_sqs::types::QueueAttributeName;
use squaremcp_core::Timestamp;

use crate::table::{GSI1, GSI1PK, GSI1SK, PK, SK, TTL_ATTRIBUTE};
use crate::{AwsClients, KmsKeyring};

/// A delivery is tried this many times through the retry queue, then moved to the DLQ.
pub const MAX_RECEIVE_COUNT: u32 = 4;
/// Longer than any delivery attempt (a 10 s HTTP timeout and the function's own timeout).
pub const RETRY_VISIBILITY_TIMEOUT_SECONDS: u32 = 60;
/// SQS's maximum: 14 days to look at and replay dead letters.
pub const DEAD_LETTER_RETENTION_SECONDS: u32 = 1_209_600;
pub const RETRY_RETENTION_SECONDS: u32 = 345_600;

#[derive(Debug, thiserror::Error)]
#[error("{what}: {why}")]
pub struct ProvisionError {
    pub what: String,
    pub why: String,
}

fn failed(what: impl Into<String>, error: impl std::error::Error) -> ProvisionError {
    ProvisionError { what: what.into(), why: aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string() }
}

/// What to create.
#[derive(Clone, Debug)]
pub struct Plan {
    pub table: String,
    /// A key id, key ARN or `alias/…`; an alias that does not exist is created with a new key.
    pub kms_key_id: String,
    pub retry_queue: String,
    pub dead_letter_queue: String,
}

/// What exists afterwards, and whether this run created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    pub table: String,
    pub table_created: bool,
    pub kms_key_arn: String,
    pub kms_key_created: bool,
    pub retry_queue_url: String,
    pub dead_letter_queue_url: String,
    pub data_key_version: u32,
}

pub async fn provision(clients: &AwsClients, plan: &Plan, now: Timestamp) -> Result<Provisioned, ProvisionError> {
    let table_created = ensure_table(&clients.dynamodb, &plan.table).await?;
    let (kms_key_arn, kms_key_created) = ensure_kms_key(&clients.kms, &plan.kms_key_id).await?;
    let (retry_queue_url, dead_letter_queue_url) = ensure_queues(&clients.sqs, &plan.retry_queue, &plan.dead_letter_queue).await?;
    let keyring = KmsKeyring::new(clients.kms.clone(), clients.dynamodb.clone(), &plan.table);
    let data_key_version = keyring
        .create_first(&kms_key_arn, now)
        .await
        .map_err(|e| ProvisionError { what: "the first data key".into(), why: e.to_string() })?;
    Ok(Provisioned {
        table: plan.table.clone(),
        table_created,
        kms_key_arn,
        kms_key_created,
        retry_queue_url,
        dead_letter_queue_url,
        data_key_version,
    })
}

fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, ProvisionError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| failed("the key schema", e))
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, ProvisionError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| failed("the attribute definitions", e))
}

/// Creates the table (on-demand, `PK`/`SK`, GSI1, TTL on `expires_at`, point-in-time
/// recovery) unless it exists; `true` when it was created. Waits until it is active.
pub async fn ensure_table(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<bool, ProvisionError> {
    let what = format!("table {table}");
    let created = match dynamodb.describe_table().table_name(table).send().await {
        Ok(_) => false,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            let index = GlobalSecondaryIndex::builder()
                .index_name(GSI1)
                .key_schema(key_element(GSI1PK, KeyType::Hash)?)
                .key_schema(key_element(GSI1SK, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| failed(&what, e))?;
            let result = dynamodb
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(string_attribute(PK)?)
                .attribute_definitions(string_attribute(SK)?)
                .attribute_definitions(string_attribute(GSI1PK)?)
                .attribute_definitions(string_attribute(GSI1SK)?)
                .key_schema(key_element(PK, KeyType::Hash)?)
                .key_schema(key_element(SK, KeyType::Range)?)
                .global_secondary_indexes(index)
                .send()
                .await;
            match result {
                Ok(_) => true,
                // Created by someone else meanwhile.
                Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => false,
                Err(error) => return Err(failed(&what, error)),
            }
        }
        Err(error) => return Err(failed(&what, error)),
    };
    wait_until_active(dynamodb, table).await?;
    let ttl = dynamodb.describe_time_to_live().table_name(table).send().await.map_err(|e| failed(&what, e))?;
    let ttl_on = ttl
        .time_to_live_description
        .and_then(|d| d.attribute_name)
        .is_some_and(|name| name == TTL_ATTRIBUTE);
    if !ttl_on {
        let spec = TimeToLiveSpecification::builder().enabled(true).attribute_name(TTL_ATTRIBUTE).build().map_err(|e| failed(&what, e))?;
        dynamodb.update_time_to_live().table_name(table).time_to_live_specification(spec).send().await.map_err(|e| failed(&what, e))?;
    }
    let recovery = PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build().map_err(|e| failed(&what, e))?;
    if let Err(error) = dynamodb.update_continuous_backups().table_name(table).point_in_time_recovery_specification(recovery).send().await {
        // Emulators may not implement backups; on AWS this is worth a loud warning.
        tracing::warn!(table, error = %aws_sdk_dynamodb::error::DisplayErrorContext(error), "could not enable point-in-time recovery");
    }
    Ok(created)
}

async fn wait_until_active(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), ProvisionError> {
    for _ in 0..120 {
        let output = dynamodb.describe_table().table_name(table).send().await.map_err(|e| failed(format!("table {table}"), e))?;
        if output.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(ProvisionError { what: format!("table {table}"), why: "not active after 2 minutes".into() })
}

/// The key's ARN, and whether it was created. An alias that does not exist is created along
/// with a new symmetric key (with yearly rotation of the key material).
pub async fn ensure_kms_key(kms: &aws_sdk_kms::Client, key_id: &str) -> Result<(String, bool), ProvisionError> {
    let what = format!("KMS key {key_id}");
    match kms.describe_key().key_id(key_id).send().await {
        Ok(output) => {
            let arn = output.key_metadata.map(|m| m.arn.unwrap_or(m.key_id)).unwrap_or_else(|| key_id.to_owned());
            Ok((arn, false))
        }
        Err(error) if key_id.starts_with("alias/") && error.as_service_error().is_some_and(|e| e.is_not_found_exception()) => {
            let created = kms
                .create_key()
                .description("SquareMCP: wraps the data keys that encrypt customer credentials")
                .key_spec(KeySpec::SymmetricDefault)
                .key_usage(KeyUsageType::EncryptDecrypt)
                .send()
                .await
                .map_err(|e| failed(&what, e))?;
            let metadata = created.key_metadata.ok_or_else(|| ProvisionError { what: what.clone(), why: "KMS returned no key".into() })?;
            if let Err(error) = kms.create_alias().alias_name(key_id).target_key_id(&metadata.key_id).send().await {
                if error.as_service_error().is_some_and(|e| e.is_already_exists_exception()) {
                    // Another `init` won the race: use its key, and retire the one made here.
                    let _ = kms.schedule_key_deletion().key_id(&metadata.key_id).pending_window_in_days(7).send().await;
                    return Box::pin(ensure_kms_key(kms, key_id)).await;
                }
                return Err(failed(&what, error));
            }
            if let Err(error) = kms.enable_key_rotation().key_id(&metadata.key_id).send().await {
                tracing::warn!(key = key_id, error = %aws_sdk_kms::error::DisplayErrorContext(error), "could not enable key rotation");
            }
            Ok((metadata.arn.unwrap_or(metadata.key_id), true))
        }
        Err(error) => Err(failed(&what, error)),
    }
}

/// The URLs of the retry queue and its dead-letter queue, created (or brought to the expected
/// attributes) as needed.
pub async fn ensure_queues(sqs: &aws_sdk_sqs::Client, retry: &str, dead_letter: &str) -> Result<(String, String), ProvisionError> {
    let dead_letter_url = ensure_queue(
        sqs,
        dead_letter,
        HashMap::from([
            (QueueAttributeName::MessageRetentionPeriod, DEAD_LETTER_RETENTION_SECONDS.to_string()),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
        ]),
    )
    .await?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| failed(format!("queue {dead_letter}"), e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| ProvisionError { what: format!("queue {dead_letter}"), why: "SQS returned no ARN".into() })?;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":{MAX_RECEIVE_COUNT}}}"#);
    let retry_url = ensure_queue(
        sqs,
        retry,
        HashMap::from([
            (QueueAttributeName::VisibilityTimeout, RETRY_VISIBILITY_TIMEOUT_SECONDS.to_string()),
            (QueueAttributeName::MessageRetentionPeriod, RETRY_RETENTION_SECONDS.to_string()),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
            (QueueAttributeName::RedrivePolicy, redrive),
        ]),
    )
    .await?;
    Ok((retry_url, dead_letter_url))
}

async fn ensure_queue(sqs: &aws_sdk_sqs::Client, name: &str, attributes: HashMap<QueueAttributeName, String>) -> Result<String, ProvisionError> {
    let what = format!("queue {name}");
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(output) => {
            let url = output.queue_url.ok_or_else(|| ProvisionError { what: what.clone(), why: "SQS returned no URL".into() })?;
            sqs.set_queue_attributes().queue_url(&url).set_attributes(Some(attributes)).send().await.map_err(|e| failed(&what, e))?;
            Ok(url)
        }
        Err(error) if error.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => {
            let output = sqs.create_queue().queue_name(name).set_attributes(Some(attributes)).send().await.map_err(|e| failed(&what, e))?;
            output.queue_url.ok_or_else(|| ProvisionError { what, why: "SQS returned no URL".into() })
        }
        Err(error) => Err(failed(&what, error)),
    }
}

