//! `sse`: one `GET /events` stream per receiver, parsed incrementally; on a lost stream the
//! receiver reconnects with `Last-Event-ID`, as `EventSource` does.

use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use super::messages::{deliver_item, deliver_profiled};
use super::{RECONNECT_BACKOFF, REQUEST_TIMEOUT, pause};
use crate::context::Receiver;
use crate::counters::ErrorKind;
use crate::net::{HttpConn, HttpError};
use pushpoll_wire::sse::SseParser;

pub async fn run(mut rx: Receiver) {
    let ctx = rx.ctx.clone();
    let mut conn = HttpConn::new(rx.target(), rx.wire());
    let mut last_id: Option<u64> = None;
    let stop = ctx.stop_receivers.clone();
    loop {
        let body = match open_stream(&mut conn, last_id, &mut rx).await {
            Ok(body) => body,
            Err(e) if rx.is_connecting() => return rx.connect_failed(e.kind()),
            Err(e) => {
                rx.error(e.kind());
                if !pause(RECONNECT_BACKOFF, rx.stopped()).await {
                    return;
                }
                continue;
            }
        };
        rx.connected();
        let ended = tokio::select! {
            end = read_stream(body, &mut last_id, &mut rx) => end,
            _ = stop.cancelled() => return,
        };
        conn.close();
        match ended {
            // The server's log started again (its ids restarted): read it from its start now.
            Ended::Reset => {
                rx.log_restarted();
                last_id = Some(0);
            }
            Ended::Lost(kind) => {
                rx.error(kind);
                if !pause(RECONNECT_BACKOFF, rx.stopped()).await {
                    return;
                }
            }
        }
    }
}

async fn open_stream(
    conn: &mut HttpConn,
    last_id: Option<u64>,
    rx: &mut Receiver,
) -> Result<Incoming, HttpError> {
    rx.request();
    let build = |t: &crate::net::TargetAddr| {
        let path = t
            .custom_profile()
            .and_then(|p| p.sse.as_ref())
            .map_or("/events", |d| d.path.as_str());
        let mut b = t.request(Method::GET, path).header(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        if let Some(id) = last_id {
            b = b.header("last-event-id", id);
        }
        b.body(Full::default())
    };
    let resp = conn.send(build, true, REQUEST_TIMEOUT).await?;
    match resp.status() {
        StatusCode::OK => Ok(resp.into_body()),
        s => Err(HttpError::Status(s)),
    }
}

/// Why a stream ended.
enum Ended {
    Lost(ErrorKind),
    /// `event: reset`: the receiver's cursor was ahead of the server's log.
    Reset,
}

/// Reads events until the stream ends; returns why it ended.
async fn read_stream(mut body: Incoming, last_id: &mut Option<u64>, rx: &mut Receiver) -> Ended {
    let mut parser = SseParser::new();
    let target = rx.ctx.target.clone();
    let door = target.custom_profile().and_then(|p| p.sse.as_ref());
    loop {
        let chunk = match body.frame().await {
            None => return Ended::Lost(ErrorKind::Closed),
            Some(Err(_)) => return Ended::Lost(ErrorKind::Io),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
        };
        let now = Instant::now();
        let mut bad = false;
        let mut reset = false;
        let parsed = parser.push(&chunk, |event| {
            if event.event == "reset" {
                reset = true;
                return;
            }
            if let Some(id) = event.id.and_then(|id| id.parse().ok()) {
                *last_id = Some(id);
            }
            let wanted = door.map_or("message", |d| d.event.as_str());
            let is_message = event.event.is_empty() || event.event == wanted;
            if !is_message || event.data.is_empty() {
                return;
            }
            let delivered = match door {
                None => deliver_item(event.data, rx, now).map(|_| ()),
                Some(d) => {
                    deliver_profiled(event.data, &d.text, d.id.as_deref(), rx, now).map(|_| ())
                }
            };
            if delivered.is_err() {
                bad = true;
            }
        });
        if bad {
            rx.error(ErrorKind::Protocol);
        }
        if parsed.is_err() {
            return Ended::Lost(ErrorKind::Protocol);
        }
        if reset {
            return Ended::Reset;
        }
    }
}
