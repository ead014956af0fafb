//! `GET /events`: Server-Sent Events, one event per message, `id:` = message id.
//!
//! Starts after `Last-Event-ID` (sent by a reconnecting `EventSource`), else after `?since=ID`,
//! else with the next new message. A gap in the history is announced as `event: missed`; a
//! cursor ahead of the log (ids start over when the server restarts) as `event: reset`, after
//! which the stream continues from the newest message.
//!
//! Slow clients: at most `--sse-max-buffered` bytes of a stream wait in its connection
//! ([`Unsent`]); beyond that the stream waits too (the messages stay in the log). A stream whose
//! waiting bytes see no progress for a whole `--sse-keepalive` period is ended, counted in
//! `pushpoll_sse_streams_dropped_total{reason="slow"}`, and its connection dropped at once, so its
//! memory is freed; an `EventSource` reconnects with `Last-Event-ID` and catches up.

use std::fmt::Write;
use std::pin::pin;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use futures_util::stream;
use prometheus::IntCounter;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::cursor::parse_since;
use super::unsent::Unsent;
use crate::api_error::ApiError;
use crate::log::{MessageLog, Page};
use crate::metrics::GaugeGuard;
use crate::state::AppState;

/// Messages read from the log per SSE write, at most; a write also stops at a quarter of
/// `--sse-max-buffered` bytes, so a client far behind catches up in several writes.
const BATCH: usize = 256;

/// Why a stream was cut short. As the body's error, it makes hyper drop the connection without
/// trying to flush what the client would not take.
#[derive(Debug, thiserror::Error)]
#[error(
    "SSE client too slow: {bytes} bytes in {chunks} writes unsent, none written for {waited:?}"
)]
struct TooSlow {
    bytes: usize,
    chunks: usize,
    waited: Duration,
}

#[derive(Deserialize)]
struct EventsQuery {
    since: Option<String>,
}

pub async fn events(State(st): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let asked = match start_cursor(&st.log, &uri, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    st.catch_up(asked).await;
    // Waiting for id `asked` would wait for nothing the client can tell from a quiet room.
    let latest = st.log.latest_id();
    let (cursor, reset) = if asked > latest {
        (latest, Some(latest))
    } else {
        (asked, None)
    };
    let stream = SseStream {
        log: st.log.clone(),
        latest: st.log.subscribe(),
        cursor,
        keepalive: st.config.sse_keepalive,
        shutdown: st.shutdown.clone(),
        greeted: false,
        reset,
        unsent: Unsent::default(),
        max_buffered: st.config.sse_max_buffered,
        dropped_slow: st.metrics.sse_streams_dropped_slow.clone(),
        ended: false,
        _open: GaugeGuard::new(&st.metrics.sse_streams),
    };
    let body = Body::from_stream(stream::unfold(stream, SseStream::next_chunk));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn start_cursor(log: &MessageLog, uri: &Uri, headers: &HeaderMap) -> Result<u64, ApiError> {
    if let Some(value) = headers.get("last-event-id") {
        let text = value.to_str().unwrap_or("");
        return text.trim().parse().map_err(|_| {
            ApiError::bad_request(format!("Last-Event-ID must be a message id, got {text:?}"))
        });
    }
    let Query(q) = Query::<EventsQuery>::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
    match q.since {
        Some(s) => parse_since(&s),
        None => Ok(log.latest_id()),
    }
}

struct SseStream {
    log: MessageLog,
    latest: watch::Receiver<u64>,
    cursor: u64,
    keepalive: Duration,
    shutdown: CancellationToken,
    greeted: bool,
    /// The newest id, when the client's cursor was ahead of it (announced with the greeting).
    reset: Option<u64>,
    /// What of this stream waits in its connection, and the most that may.
    unsent: Unsent,
    max_buffered: usize,
    dropped_slow: IntCounter,
    /// Set after [`TooSlow`]: nothing more to send.
    ended: bool,
    _open: GaugeGuard,
}

/// Whether a stream may hand over its next write.
enum Room {
    Yes,
    Slow(TooSlow),
    ShuttingDown,
}

impl SseStream {
    /// The next bytes to send, an error to drop a slow client, or None to end the stream
    /// (server shutting down).
    async fn next_chunk(mut self) -> Option<(Result<Bytes, TooSlow>, Self)> {
        if self.ended {
            return None;
        }
        if !self.greeted {
            // Sent at once so the client sees the stream open; also sets EventSource's retry delay.
            self.greeted = true;
            return Some((Ok(greeting(self.reset)), self));
        }
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            self.latest.borrow_and_update();
            let mut page = self.log.since(self.cursor, BATCH);
            if let Some(size) = fit(&mut page, self.max_buffered / 4) {
                // Nothing is encoded (or held but references into the log) until there is room.
                match self.wait_for_room(size).await {
                    Room::Yes => {}
                    Room::Slow(slow) => return self.end_slow(slow),
                    Room::ShuttingDown => return None,
                }
                let (chunk, last) = encode(&page);
                self.cursor = last;
                let chunk = self.unsent.track(chunk);
                return Some((Ok(chunk), self));
            }
            let written = self.unsent.written();
            tokio::select! {
                changed = self.latest.changed() => changed.ok()?,
                () = tokio::time::sleep(self.keepalive) => {
                    if self.unsent.bytes() == 0 {
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), self));
                    }
                    // Still sending: no keep-alive needed, unless nothing moved for a whole period.
                    if self.unsent.written() == written {
                        let slow = self.too_slow(self.keepalive);
                        return self.end_slow(slow);
                    }
                }
                () = self.shutdown.cancelled() => return None,
            }
        }
    }

    /// Waits until `next` more bytes fit under `--sse-max-buffered`: at once for a client that
    /// reads (hyper pulls several writes before it sends any), for as long as some of what waits
    /// gets written every `--sse-keepalive`, and no longer.
    async fn wait_for_room(&self, next: usize) -> Room {
        let mut deadline = Instant::now() + self.keepalive;
        let mut waited_since = Instant::now();
        loop {
            let mut progress = pin!(self.unsent.progress());
            progress.as_mut().enable();
            if !self.unsent.would_exceed(next, self.max_buffered) {
                return Room::Yes;
            }
            tokio::select! {
                () = progress => {
                    waited_since = Instant::now();
                    deadline = waited_since + self.keepalive;
                }
                () = tokio::time::sleep_until(deadline) => {
                    return Room::Slow(self.too_slow(waited_since.elapsed()));
                }
                () = self.shutdown.cancelled() => return Room::ShuttingDown,
            }
        }
    }

    fn too_slow(&self, waited: Duration) -> TooSlow {
        TooSlow {
            bytes: self.unsent.bytes(),
            chunks: self.unsent.chunks(),
            waited,
        }
    }

    fn end_slow(mut self, slow: TooSlow) -> Option<(Result<Bytes, TooSlow>, Self)> {
        self.ended = true;
        self.dropped_slow.inc();
        tracing::debug!(cursor = self.cursor, "dropping an SSE stream: {slow}");
        Some((Err(slow), self))
    }
}

/// `retry:` and, for a cursor that was ahead of the log, `event: reset` with the newest id as
/// its `id:`, so that a later reconnect's `Last-Event-ID` is valid.
fn greeting(reset: Option<u64>) -> Bytes {
    const RETRY: &[u8] = b"retry: 1000\n\n";
    match reset {
        None => Bytes::from_static(RETRY),
        Some(latest) => {
            let mut out = BytesMut::with_capacity(96);
            out.put_slice(RETRY);
            write!(
                out,
                "event: reset\nid: {latest}\ndata: {{\"latest_id\":{latest}}}\n\n"
            )
            .expect("writing to memory cannot fail");
            out.freeze()
        }
    }
}

/// Bytes of the events of one message, at most (`id: N\ndata: JSON\n\n`).
fn event_len(json_len: usize) -> usize {
    json_len + 32
}

/// Bytes of an `event: missed`, at most.
const MISSED_LEN: usize = 96;

/// Keeps as many of the page's messages as fit in `max_bytes` (at least one) and returns their
/// encoded size, at most; None when the page has no messages.
fn fit(page: &mut Page, max_bytes: usize) -> Option<usize> {
    let mut size = if page.missed > 0 { MISSED_LEN } else { 0 };
    let mut keep = 0;
    for m in &page.messages {
        let next = event_len(m.json().len());
        if keep > 0 && size + next > max_bytes {
            break;
        }
        size += next;
        keep += 1;
    }
    page.messages.truncate(keep);
    (keep > 0).then_some(size)
}

/// `event: missed` (if messages were evicted unseen) followed by one event per message; returns
/// the bytes and the id of the last message (0 for an empty page).
fn encode(page: &Page) -> (Bytes, u64) {
    let size: usize = page
        .messages
        .iter()
        .map(|m| event_len(m.json().len()))
        .sum::<usize>()
        + MISSED_LEN;
    let mut out = BytesMut::with_capacity(size);
    if page.missed > 0 {
        let oldest = page.oldest_id.unwrap_or_default();
        write!(
            out,
            "event: missed\ndata: {{\"missed\":{},\"oldest_id\":{oldest}}}\n\n",
            page.missed
        )
        .expect("writing to memory cannot fail");
    }
    for m in &page.messages {
        write!(out, "id: {}\ndata: ", m.id()).expect("writing to memory cannot fail");
        out.put_slice(m.json());
        out.put_slice(b"\n\n");
    }
    (out.freeze(), page.last_id().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_what_fits_in_max_bytes_but_always_one_message() {
        let log = MessageLog::new(10, 1000);
        for _ in 0..3 {
            log.append("n", &"x".repeat(100)).expect("stored");
        }
        let mut page = log.since(0, 10);
        let one = event_len(page.messages[0].json().len());
        assert_eq!(fit(&mut page.clone(), 10), Some(one));
        assert_eq!(fit(&mut page, 2 * one + 1), Some(2 * one));
        let (bytes, last) = encode(&page);
        assert_eq!(last, 2);
        assert!(bytes.len() <= 2 * one);
        assert_eq!(String::from_utf8_lossy(&bytes).matches("id: ").count(), 2);
        assert_eq!(fit(&mut log.since(3, 10), 1000), None);
    }

    #[test]
    fn greeting_announces_a_reset_with_the_newest_id() {
        assert_eq!(&greeting(None)[..], b"retry: 1000\n\n");
        assert_eq!(
            &greeting(Some(7))[..],
            b"retry: 1000\n\nevent: reset\nid: 7\ndata: {\"latest_id\":7}\n\n"
        );
    }

    #[test]
    fn encode_writes_one_event_per_message_and_announces_gaps() {
        let log = MessageLog::new(2, 100);
        for text in ["a", "b", "c"] {
            log.append("n", text).expect("stored");
        }
        let (bytes, last) = encode(&log.since(0, 10));
        assert_eq!(last, 3);
        let text = String::from_utf8(bytes.to_vec()).expect("utf8");
        assert!(
            text.starts_with("event: missed\ndata: {\"missed\":1,\"oldest_id\":2}\n\n"),
            "{text}"
        );
        assert!(text.contains("id: 2\ndata: {\"id\":2,"), "{text}");
        assert!(text.ends_with("\"}\n\n") || text.ends_with("}\n\n"));
        assert_eq!(
            text.matches("\nid: ").count() + usize::from(text.starts_with("id: ")),
            2
        );
    }
}
