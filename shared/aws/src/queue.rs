//! The SQS adapter of the `Queue` port. The redrive to the dead-letter queue is the queue's own
//! policy (set by `template.yaml`, `localstack/init.sh` or `squaremcp init`), not done here.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use squaremcp_core::ports::queue_limits;
use squaremcp_core::{Queue, QueueError, QueuedMessage};

use crate::error::queue_unavailable;

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    /// Sends nothing: `url` is the queue URL (`SQUAREMCP_RETRY_QUEUE_URL`, …).
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Whole seconds as SQS wants them; the limits were checked before, so this cannot overflow.
fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

/// A receipt SQS no longer honours: the message was deleted or received again.
fn stale<E: aws_sdk_sqs::error::ProvideErrorMetadata>(error: &aws_sdk_sqs::error::SdkError<E, aws_sdk_sqs::config::http::HttpResponse>) -> bool {
    let code = match error {
        aws_sdk_sqs::error::SdkError::ServiceError(context) => context.err().code(),
        _ => None,
    };
    matches!(
        code,
        Some("ReceiptHandleIsInvalid" | "InvalidParameterValue" | "MessageNotInflight" | "AWS.SimpleQueueService.MessageNotInflight")
    )
}

/// A long poll holds its request open for up to `wait` on purpose: the client's attempt and
/// operation timeouts (a few seconds, see `clients`) would cut every one off, so this request
/// gets the wait plus the client's own allowance.
fn long_poll_timeouts(wait: Duration) -> aws_sdk_sqs::config::Builder {
    let timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(wait + crate::clients::ATTEMPT_TIMEOUT)
        .operation_timeout(wait + crate::clients::OPERATION_TIMEOUT)
        .build();
    aws_sdk_sqs::config::Builder::default().timeout_config(timeouts)
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        queue_limits::check_send(body, delay)?;
        let output = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(seconds(delay))
            .send()
            .await
            .map_err(|e| queue_unavailable("SendMessage", e))?;
        output.message_id.ok_or_else(|| QueueError::Unavailable("SQS returned no message id".into()))
    }

    async fn receive(&self, max: usize, wait: Duration, visibility: Duration) -> Result<Vec<QueuedMessage>, QueueError> {
        queue_limits::check_receive(max, wait, visibility)?;
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .wait_time_seconds(seconds(wait))
            .visibility_timeout(seconds(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .customize()
            .config_override(long_poll_timeouts(wait))
            .send()
            .await
            .map_err(|e| queue_unavailable("ReceiveMessage", e))?;
        output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| {
                let receive_count = message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                match (message.message_id, message.receipt_handle) {
                    (Some(id), Some(receipt)) => {
                        Ok(QueuedMessage { id, body: message.body.unwrap_or_default(), receipt, receive_count })
                    }
                    _ => Err(QueueError::Unavailable("SQS returned a message without id or receipt".into())),
                }
            })
            .collect()
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        match self.client.delete_message().queue_url(&self.url).receipt_handle(receipt).send().await {
            Ok(_) => Ok(()),
            Err(error) if stale(&error) => Err(QueueError::StaleReceipt),
            Err(error) => Err(queue_unavailable("DeleteMessage", error)),
        }
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        queue_limits::check_delay("delay", delay, queue_limits::MAX_VISIBILITY)?;
        let result = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(delay))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if stale(&error) => Err(QueueError::StaleReceipt),
            Err(error) => Err(queue_unavailable("ChangeMessageVisibility", error)),
        }
    }
}
