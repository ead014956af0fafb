//! `longpoll`: `GET /messages?since=cursor&wait=…` in a loop; the server answers as soon as
//! there is news, or empty when the wait runs out.

use std::time::Duration;

use tokio::time::Instant;

use super::messages::ListCursor;
use super::{RECONNECT_BACKOFF, pause};
use crate::context::Receiver;
use crate::counters::ErrorKind;
use crate::net::HttpConn;
use crate::scenario::format_duration;

/// Extra time the client allows beyond the wait it asked for.
const WAIT_SLACK: Duration = Duration::from_secs(10);

pub async fn run(wait: Duration, start_id: u64, mut rx: Receiver) {
    let mut conn = HttpConn::new(rx.target(), rx.wire());
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
    // One waiter on the run's shared stop token for the whole loop, not one per request.
    let stop = rx.ctx.stop_receivers.clone();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let path = format!("/messages?since={}&wait={wait_text}", cursor.last_id);
        rx.request();
        let requested = Instant::now();
        let answer = tokio::select! {
            a = conn.get_list(&path, wait + WAIT_SLACK) => a,
            _ = &mut stopped => return,
        };
        let ok = match answer {
            Ok(answer) => {
                if cursor.restart_if_ahead(answer.latest_id) {
                    rx.log_restarted();
                    continue;
                }
                let ok = apply(&mut cursor, &answer.body, &mut rx);
                // A long poll sent after a probe was accepted must answer with it at once.
                rx.check_stale(requested);
                ok
            }
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
