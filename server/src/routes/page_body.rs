//! The body of a `GET /messages` answer: the page's JSON array, streamed from the log.
//!
//! Why: an answer its client does not read used to pin a full copy of the history (82 MB for
//! 10,000 messages of 8 KB). This body holds only a cursor into the log and pulls
//! [`BATCH`] messages at a time while hyper asks for more; small messages are joined into chunks
//! of about [`CHUNK`] bytes, large ones are sent as the log's own shared bytes. An unread answer
//! thus pins at most what hyper buffers per connection, never the history.
//!
//! The page is fixed when the answer starts (ids `first_id..first_id + count`, as its `ETag` and
//! `Content-Length` say). Messages never change, so the bytes are the same whenever they are read;
//! if the log evicts messages of the page before they were sent (a reader slower than the whole
//! log's turnover), the body ends with an error and hyper aborts the answer instead of sending a
//! page with a hole in it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};

use crate::log::{MessageLog, PageInfo, StoredMessage};

/// Messages fetched from the log per lock.
pub const BATCH: usize = 64;
/// Small messages are joined into chunks of about this size.
pub const CHUNK: usize = 16 * 1024;
/// Messages at least this large are sent as their own shared bytes, never copied.
pub const SHARE_FROM: usize = 2 * 1024;

/// Why an answer was cut off.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "message {id} was evicted from the log before this answer reached it (the answer was read \
     slower than the log turns over); ask again"
)]
pub struct Evicted {
    pub id: u64,
}

/// A `hyper` body yielding `[`, the page's messages joined by `,`, and `]`.
pub struct PageBody {
    log: MessageLog,
    /// Next message id to send.
    next: u64,
    /// One past the last id of the page.
    end: u64,
    batch: std::vec::IntoIter<StoredMessage>,
    /// A large message's bytes, due right after the chunk just returned.
    shared: Option<Bytes>,
    opened: bool,
    closed: bool,
    /// Bytes not yet yielded (the exact size hint, so hyper sends a `Content-Length`).
    remaining: u64,
}

impl PageBody {
    pub fn new(log: MessageLog, info: &PageInfo) -> Self {
        PageBody {
            log,
            next: info.first_id,
            end: info.first_id + info.count,
            batch: Vec::new().into_iter(),
            shared: None,
            opened: false,
            closed: false,
            remaining: info.json_len,
        }
    }

    fn next_message(&mut self) -> Result<Option<StoredMessage>, Evicted> {
        if self.next >= self.end {
            return Ok(None);
        }
        if let Some(m) = self.batch.next() {
            self.next = m.id() + 1;
            return Ok(Some(m));
        }
        let want = usize::try_from(self.end - self.next)
            .unwrap_or(usize::MAX)
            .min(BATCH);
        let page = self.log.since(self.next - 1, want);
        if page.messages.len() != want
            || page.messages.first().map(StoredMessage::id) != Some(self.next)
        {
            return Err(Evicted { id: self.next });
        }
        self.batch = page.messages.into_iter();
        Ok(self.batch.next().inspect(|m| self.next = m.id() + 1))
    }

    /// The next chunk: small messages copied together with their separators, or a separator
    /// before a large message (which `shared` then holds for the following call).
    fn next_chunk(&mut self) -> Result<Option<Bytes>, Evicted> {
        if let Some(shared) = self.shared.take() {
            return Ok(Some(shared));
        }
        if self.closed {
            return Ok(None);
        }
        let mut out = BytesMut::new();
        loop {
            let Some(message) = self.next_message()? else {
                self.closed = true;
                let close: &'static [u8] = if self.opened { b"]" } else { b"[]" };
                return Ok(Some(join(out, close)));
            };
            let separator: &'static [u8] = if self.opened { b"," } else { b"[" };
            self.opened = true;
            let json = message.json();
            if json.len() >= SHARE_FROM {
                self.shared = Some(json.clone());
                return Ok(Some(join(out, separator)));
            }
            if out.capacity() == 0 {
                out.reserve(CHUNK + SHARE_FROM);
            }
            out.put_slice(separator);
            out.put_slice(json);
            if out.len() >= CHUNK {
                return Ok(Some(out.freeze()));
            }
        }
    }
}

/// `out` followed by `tail`, without allocating when `out` is empty.
fn join(mut out: BytesMut, tail: &'static [u8]) -> Bytes {
    if out.is_empty() {
        return Bytes::from_static(tail);
    }
    out.put_slice(tail);
    out.freeze()
}

impl hyper::body::Body for PageBody {
    type Data = Bytes;
    type Error = Evicted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Evicted>>> {
        // Never pending: the log is in memory and its lock is held for a batch of clones.
        Poll::Ready(match self.next_chunk() {
            Ok(Some(chunk)) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Some(Ok(Frame::data(chunk)))
            }
            Ok(None) => None,
            Err(e) => {
                self.closed = true;
                self.shared = None;
                Some(Err(e))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        self.closed && self.shared.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(body: PageBody) -> Result<(Vec<u8>, usize), Evicted> {
        let mut body = body;
        let mut out = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            let data = frame?.into_data().expect("data frames only");
            out.extend_from_slice(&data);
            frames += 1;
        }
        Ok((out, frames))
    }

    #[tokio::test]
    async fn streams_exactly_the_bytes_of_json_array() {
        let log = MessageLog::new(500, 10_000);
        let info = log.page_info(0, usize::MAX);
        let (bytes, _) = collect(PageBody::new(log.clone(), &info))
            .await
            .expect("body");
        assert_eq!(bytes, b"[]");
        for i in 0..300 {
            // Small and large messages mixed, so both copied chunks and shared bytes occur.
            let text = if i % 7 == 0 {
                "L".repeat(3000)
            } else {
                format!("m{i}")
            };
            log.append("n", &text).expect("stored");
        }
        for (since, limit) in [
            (0, usize::MAX),
            (5, 1),
            (10, 70),
            (299, 5),
            (300, 5),
            (999, 1),
        ] {
            let info = log.page_info(since, limit);
            let body = PageBody::new(log.clone(), &info);
            assert_eq!(
                hyper::body::Body::size_hint(&body).exact(),
                Some(info.json_len)
            );
            let (bytes, _) = collect(body).await.expect("body");
            assert_eq!(
                bytes,
                log.since(since, limit).json_array(),
                "{since} {limit}"
            );
        }
    }

    #[tokio::test]
    async fn large_messages_are_shared_not_copied() {
        let log = MessageLog::new(10, 10_000);
        let stored = log.append("n", &"x".repeat(4000)).expect("stored");
        let mut body = PageBody::new(log.clone(), &log.page_info(0, usize::MAX));
        let mut shared = false;
        while let Some(frame) = body.frame().await {
            let data = frame.expect("frame").into_data().expect("data");
            shared |= data.as_ptr() == stored.json().as_ptr();
        }
        assert!(shared, "the message's own bytes were sent");
    }

    #[tokio::test]
    async fn an_answer_overtaken_by_eviction_ends_with_an_error() {
        // 1 kB messages: a chunk holds about 16, so the first frame leaves most of the page.
        let log = MessageLog::new(100, 2000);
        for _ in 0..100 {
            log.append("n", &"y".repeat(1000)).expect("stored");
        }
        let mut body = PageBody::new(log.clone(), &log.page_info(0, usize::MAX));
        let first = body.frame().await.expect("a frame").expect("data");
        assert!(!first.into_data().expect("data").is_empty());
        for i in 0..100 {
            log.append("n", &format!("later {i}")).expect("stored");
        }
        let mut failed = false;
        for _ in 0..1000 {
            match body.frame().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    failed = e.id > BATCH as u64;
                    break;
                }
                None => break,
            }
        }
        assert!(
            failed,
            "the body must fail rather than skip evicted messages"
        );
    }
}
