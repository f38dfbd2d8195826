//! SDK errors as the ports' errors. The message carries the SDK's full error context (service
//! code and message), never request data: no item, key or secret is part of an SDK error.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use squaremcp_core::{KeyringError, QueueError, StoreError};

pub(crate) fn store_unavailable(operation: &str, error: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB {operation}: {}", DisplayErrorContext(error)))
}

pub(crate) fn keyring_unavailable(operation: &str, error: impl std::error::Error) -> KeyringError {
    KeyringError::Unavailable(format!("{operation}: {}", DisplayErrorContext(error)))
}

pub(crate) fn queue_unavailable(operation: &str, error: impl std::error::Error) -> QueueError {
    QueueError::Unavailable(format!("SQS {operation}: {}", DisplayErrorContext(error)))
}

/// A request the SDK refused to build (a required field missing): a bug here, not in the data.
pub(crate) fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB request could not be built: {error}"))
}
