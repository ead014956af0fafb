//! `longpoll`: `GET /messages?since=cursor&wait=…` in a loop; the server answers as soon as
//! there is news, or empty when the wait runs out.

use std::time::Duration;

use http::{Method, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;

use super::messages::ListCursor;
use super::{RECONNECT_BACKOFF, pause};
use crate::context::Receiver;
use crate::counters::ErrorKind;
use crate::net::{HttpConn, HttpError, collect_body};
use crate::scenario::format_duration;

/// Extra time the client allows beyond the wait it asked for.
const WAIT_SLACK: Duration = Duration::from_secs(10);

pub async fn run(wait: Duration, start_id: u64, mut rx: Receiver) {
    let ctx = rx.ctx.clone();
    let mut conn = HttpConn::new(ctx.target.clone(), ctx.counters.receiver_wire.clone());
    if let Err(e) = conn.open().await {
        rx.connect_failed(e.kind());
        return;
    }
    rx.connected();
    let mut cursor = ListCursor {
        last_id: start_id,
        seen_len: 0,
    };
    let wait_text = format_duration(wait);
    loop {
        let path = format!("/messages?since={}&wait={wait_text}", cursor.last_id);
        rx.request();
        let answer = tokio::select! {
            a = fetch(&mut conn, &path, wait + WAIT_SLACK) => a,
            _ = rx.stopped().cancelled() => return,
        };
        let ok = match answer {
            Ok(body) => apply(&mut cursor, &body, &mut rx),
            Err(e) => {
                rx.error(e.kind());
                false
            }
        };
        if !ok && !pause(RECONNECT_BACKOFF, rx.stopped()).await {
            return;
        }
    }
}

async fn fetch(
    conn: &mut HttpConn,
    path: &str,
    timeout: Duration,
) -> Result<bytes::Bytes, HttpError> {
    let build = |t: &crate::net::TargetAddr| t.request(Method::GET, path).body(Full::default());
    let resp = conn.send(build, true, timeout).await?;
    let status = resp.status();
    let body = collect_body(resp, timeout).await?;
    match status {
        StatusCode::OK => Ok(body),
        s => Err(HttpError::Status(s)),
    }
}

/// True when the answer was a valid list.
fn apply(cursor: &mut ListCursor, body: &[u8], rx: &mut Receiver) -> bool {
    match cursor.apply(body, rx, Instant::now()) {
        Ok(diff) => {
            if diff.new_items == 0 {
                rx.empty_poll();
            }
            true
        }
        Err(_) => {
            rx.error(ErrorKind::Protocol);
            false
        }
    }
}
