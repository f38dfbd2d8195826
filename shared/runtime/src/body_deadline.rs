//! A deadline for reading a request body: a client that sends its body a byte at a time (a
//! slow-body "slowloris") gets an error when the deadline passes instead of holding a handler,
//! its buffers and a connection for as long as it likes. The deadline covers the whole body,
//! not each read, so trickling bytes does not extend it.

use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use futures_util::StreamExt as _;
use tokio::time::Instant;

/// Why a body read failed: the handler's body extractor turns it into a 4xx answer.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub struct BodyTimedOut(Duration);

/// `body`, failing with [`BodyTimedOut`] once `limit` has passed since this call (the moment
/// its headers were read). An empty body is passed through as it is.
pub fn with_deadline(body: Body, limit: Duration) -> Body {
    if body.is_end_stream() {
        return body;
    }
    let deadline = Instant::now() + limit;
    let chunks =
        futures_util::stream::unfold(Some(body.into_data_stream()), move |state| async move {
            let mut chunks = state?;
            match tokio::time::timeout_at(deadline, chunks.next()).await {
                Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
                Ok(Some(Err(error))) => Some((Err(axum::BoxError::from(error)), None)),
                Ok(None) => None,
                // The stream ends after the error: nothing more is read from this client.
                Err(_) => Some((Err(axum::BoxError::from(BodyTimedOut(limit))), None)),
            }
        });
    Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use futures_util::stream;

    /// A body that sends `first`, then nothing for `pause`, then `second`.
    fn slow_body(first: &'static str, pause: Duration, second: &'static str) -> Body {
        let parts = stream::iter([(Duration::ZERO, first), (pause, second)]).then(
            |(wait, part)| async move {
                tokio::time::sleep(wait).await;
                Ok::<_, std::io::Error>(Bytes::from_static(part.as_bytes()))
            },
        );
        Body::from_stream(parts)
    }

    async fn read(body: Body) -> Result<Bytes, axum::Error> {
        axum::body::to_bytes(body, usize::MAX).await
    }

    // Real time, in short steps (tokio's paused clock needs a feature nothing else here uses).
    const LIMIT: Duration = Duration::from_millis(400);

    #[tokio::test]
    async fn a_body_that_arrives_in_time_is_read_whole() {
        let body = with_deadline(
            slow_body("hello ", Duration::from_millis(100), "world"),
            LIMIT,
        );
        assert_eq!(
            read(body).await.ok(),
            Some(Bytes::from_static(b"hello world"))
        );
    }

    #[tokio::test]
    async fn a_body_still_arriving_at_the_deadline_fails() {
        let body = with_deadline(slow_body("hello ", Duration::from_secs(5), "world"), LIMIT);
        let started = Instant::now();
        let error = read(body)
            .await
            .err()
            .map(|e| format!("{e:?}"))
            .unwrap_or_default();
        assert!(error.contains("BodyTimedOut"), "{error}");
        let waited = started.elapsed();
        assert!(
            waited >= LIMIT && waited < Duration::from_secs(3),
            "it fails at the deadline, not when the client resumes: {waited:?}"
        );
    }

    #[tokio::test]
    async fn trickling_bytes_does_not_extend_the_deadline() {
        // Eight parts 100 ms apart: each read is quick, the whole takes longer than the limit.
        let parts = stream::iter(0..8).then(|_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, std::io::Error>(Bytes::from_static(b"x"))
        });
        let body = with_deadline(Body::from_stream(parts), LIMIT);
        assert!(read(body).await.is_err());
    }

    #[tokio::test]
    async fn an_empty_body_stays_empty() {
        let body = with_deadline(Body::empty(), Duration::from_secs(5));
        assert!(body.is_end_stream());
        assert_eq!(read(body).await.ok(), Some(Bytes::new()));
    }
}
