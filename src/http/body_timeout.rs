//! An idle timeout for request bodies: a body that delivers no byte for the
//! configured time fails with [`BodyStalled`], so its handler answers and the
//! connection closes.
//!
//! It measures only time spent waiting for the client: the clock runs while a
//! handler waits for the next frame and restarts with every frame, so a large
//! upload may stream for hours, and a handler busy with bytes it already has
//! (hashing, syncing) is never cut off.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error of a body whose client stopped sending.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no byte of the request body for {} s", .0.as_secs())]
pub struct BodyStalled(pub Duration);

/// Set (in a request's extensions) once its body stalled.
#[derive(Debug, Clone, Default)]
pub struct StallFlag(Arc<AtomicBool>);

impl StallFlag {
    /// Whether the body stalled.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Wraps `body` so that it fails after `idle` without a frame, and raises `flag`
/// when it does.
pub fn with_idle_timeout<B>(body: B, idle: Duration, flag: StallFlag) -> Body
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    Body::new(IdleTimeout {
        inner: Box::pin(body),
        idle,
        deadline: None,
        flag,
    })
}

/// Middleware: a request whose body stalled is the client's failure, so a 5xx
/// that a handler made of it becomes a 408 that says so.
pub async fn answer_stalls_with_408(request: Request, next: Next) -> Response {
    let flag = request.extensions().get::<StallFlag>().cloned();
    let response = next.run(request).await;
    match flag {
        Some(flag) if flag.is_set() && response.status().is_server_error() => {
            super::error::ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the client stopped sending the request body; the bytes that arrived before \
                 are kept",
                "Send the rest (an upload stream resumes from its staged length: GET \
                 upload/stream/{id}).",
            )
            .into_response()
        }
        _ => response,
    }
}

struct IdleTimeout<B> {
    inner: Pin<Box<B>>,
    idle: Duration,
    /// Armed while a poll waits for the client; dropped when a frame arrives.
    deadline: Option<Pin<Box<Sleep>>>,
    flag: StallFlag,
}

impl<B> HttpBody for IdleTimeout<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => {
                this.deadline = None;
                Poll::Ready(frame.map(|result| result.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let deadline = this.deadline.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(Instant::now() + idle))
                });
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.deadline = None;
                        this.flag.0.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(Box::new(BodyStalled(idle)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (of a body read) is, at its root, a stalled body.
pub fn is_stalled(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<BodyStalled>() {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_silent_body_fails_and_a_trickling_one_does_not() {
        let (mut sender, body) =
            http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(4);
        let flag = StallFlag::default();
        let mut body = with_idle_timeout(body, Duration::from_secs(2), flag.clone());
        let flag_seen_by_feeder = flag.clone();
        let feeder = tokio::spawn(async move {
            for _ in 0..5 {
                assert!(!flag_seen_by_feeder.is_set());
                tokio::time::sleep(Duration::from_millis(100)).await;
                sender.send_data(Bytes::from_static(b"x")).await.unwrap();
            }
            // Then silence, with the sender still open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        for _ in 0..5 {
            let frame = body.frame().await.unwrap().unwrap();
            assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"x"));
        }
        let error = body.frame().await.unwrap().unwrap_err();
        assert!(is_stalled(&error), "{error}");
        assert!(flag.is_set());
        feeder.abort();
    }
}
