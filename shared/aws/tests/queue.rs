//! The queue contract against SQS (moto_server), with a redrive policy as `squaremcp init`
//! and `template.yaml` set it up (here with a smaller receive count, to keep the test short).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use squaremcp_aws::SqsQueue;
use squaremcp_store_conformance::queue::QueuePair;

const MAX_RECEIVE_COUNT: u32 = 3;

async fn fresh_pair() -> QueuePair {
    let clients = common::clients().await;
    let dead_letter_url = clients.sqs.create_queue().queue_name(common::unique("dlq")).send().await.unwrap().queue_url.unwrap();
    let arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let redrive = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":{MAX_RECEIVE_COUNT}}}"#);
    let url = clients
        .sqs
        .create_queue()
        .queue_name(common::unique("retry"))
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    QueuePair {
        queue: Arc::new(SqsQueue::new(clients.sqs.clone(), url)),
        dead_letter: Arc::new(SqsQueue::new(clients.sqs, dead_letter_url)),
        max_receive_count: MAX_RECEIVE_COUNT,
    }
}

squaremcp_store_conformance::queue_conformance_tests!(fresh_pair().await);
