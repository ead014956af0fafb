//! `GET /events`: Server-Sent Events, one event per message, `id:` = message id.
//!
//! Starts after `Last-Event-ID` (sent by a reconnecting `EventSource`), else after `?since=ID`,
//! else with the next new message. A gap in the history is announced as `event: missed`; a
//! cursor ahead of the log (ids start over when the server restarts) as `event: reset`, after
//! which the stream continues from the newest message.

use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};
use futures_util::stream;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api_error::ApiError;
use crate::log::{MessageLog, Page};
use crate::metrics::GaugeGuard;
use crate::state::AppState;

/// Messages per SSE write; a client far behind catches up in chunks of this size.
const BATCH: usize = 256;

#[derive(Deserialize)]
struct EventsQuery {
    since: Option<String>,
}

pub async fn events(State(st): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let asked = match start_cursor(&st.log, &uri, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
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
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "`since` must be a message id (0 or a positive whole number), got {s:?}"
            ))
        }),
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
    _open: GaugeGuard,
}

impl SseStream {
    /// The next bytes to send, or None to end the stream (server shutting down).
    async fn next_chunk(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
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
            let page = self.log.since(self.cursor, BATCH);
            if let Some(last) = page.last_id() {
                self.cursor = last;
                return Some((Ok(encode(&page)), self));
            }
            tokio::select! {
                changed = self.latest.changed() => changed.ok()?,
                () = tokio::time::sleep(self.keepalive) => {
                    return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), self));
                }
                () = self.shutdown.cancelled() => return None,
            }
        }
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

/// `event: missed` (if messages were evicted unseen) followed by one event per message.
fn encode(page: &Page) -> Bytes {
    let size: usize = page
        .messages
        .iter()
        .map(|m| m.json().len() + 32)
        .sum::<usize>()
        + 96;
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
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = String::from_utf8(encode(&log.since(0, 10)).to_vec()).expect("utf8");
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
