//! The `delivery-retry` Lambda: outbound webhook deliveries from the SQS retry queue. Each
//! record is one attempt; a record whose processing failed is reported back
//! (`batchItemFailures`), so SQS redelivers it alone and its redrive policy moves it to the
//! dead-letter queue when it keeps failing.

#[tokio::main]
async fn main() -> Result<(), squaremcp_runtime::lambda::Error> {
    squaremcp_runtime::lambda::run_delivery_retry().await
}
