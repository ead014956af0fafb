//! The request-body deadline (`--body-timeout`): a request body must be complete this long after
//! its headers arrived.
//!
//! Why: a client that announces a body and then sends it slowly, or not at all, would otherwise
//! hold its connection (and the handler reading the body) forever. The deadline is for the whole
//! body, not per chunk, so dripping one byte at a time does not extend it. A handler reading the
//! body sees [`BodyTimeout`] as the error (`POST /messages` answers `408` and closes).

use std::error::Error as StdError;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use prometheus::IntCounter;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The error a body yields when its deadline passed before its end.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the request body was not complete {0:?} after the request's headers")]
pub struct BodyTimeout(pub Duration);

/// A request body that fails with [`BodyTimeout`] once its deadline has passed.
pub struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Instant,
    /// Created on the first wait, so bodies that are already complete never arm a timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timeouts: IntCounter,
    expired: bool,
}

impl<B> DeadlineBody<B> {
    /// `inner` must be complete within `timeout` from now; an expiry is counted in `timeouts`.
    pub fn new(inner: B, timeout: Duration, timeouts: IntCounter) -> Self {
        DeadlineBody {
            inner,
            timeout,
            deadline: Instant::now() + timeout,
            sleep: None,
            timeouts,
            expired: false,
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.expired = true;
        self.timeouts.inc();
        Poll::Ready(Some(Err(Box::new(BodyTimeout(self.timeout)))))
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test]
    async fn a_body_that_stalls_fails_at_its_deadline() {
        let stalled = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        let timeouts = IntCounter::new("t", "t").expect("counter");
        let body = DeadlineBody::new(stalled, Duration::from_millis(50), timeouts.clone());
        let Err(error) = body.collect().await else {
            panic!("the body fails")
        };
        assert!(error.is::<BodyTimeout>(), "{error}");
        assert_eq!(timeouts.get(), 1);
    }

    #[tokio::test]
    async fn a_complete_body_passes_through() {
        let full = http_body_util::Full::new(Bytes::from_static(b"hello"));
        let timeouts = IntCounter::new("t", "t").expect("counter");
        let body = DeadlineBody::new(full, Duration::from_millis(50), timeouts.clone());
        let bytes = body.collect().await.expect("complete").to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(timeouts.get(), 0);
    }
}
