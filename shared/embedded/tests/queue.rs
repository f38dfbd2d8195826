//! The queue contract against the in-process twin.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use squaremcp_embedded::MemoryQueue;
use squaremcp_store_conformance::queue::QueuePair;

fn fresh_pair() -> QueuePair {
    let dead_letter = Arc::new(MemoryQueue::new());
    let queue = Arc::new(MemoryQueue::with_dead_letter(Arc::clone(&dead_letter), 3));
    QueuePair { queue, dead_letter, max_receive_count: 3 }
}

squaremcp_store_conformance::queue_conformance_tests!(fresh_pair());
