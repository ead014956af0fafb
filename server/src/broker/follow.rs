//! The follower: each node reads the shared stream in id order (`XREAD BLOCK` from the newest id
//! it holds) and feeds its own `MessageLog`, whose change signal then wakes every door exactly as
//! a local append would. After a lost connection it reconnects with backoff and reads on from the
//! newest id it holds: nothing skipped, nothing twice (`MessageLog::ingest` ignores ids it has).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::link::Link;
use super::script::{self, Keys};
use super::stream::{self, Entry};
use super::{BrokerError, now_micros};
use crate::log::{Ingested, MessageLog};
use crate::metrics::BrokerMetrics;

/// Entries read per `XREAD`.
const READ_BATCH: usize = 512;
/// How long one `XREAD` waits for a new entry (the link's response timeout is longer).
pub const BLOCK_MS: u64 = 1000;
/// Shortest pause between attempts while Redis is unreachable.
const MIN_PAUSE: Duration = Duration::from_millis(20);

pub async fn follow(
    link: &Link,
    keys: &Keys,
    log: &MessageLog,
    metrics: &BrokerMetrics,
    stop: &CancellationToken,
) {
    let mut up = true;
    metrics.up.set(1);
    loop {
        if !up {
            // Back from an outage: make sure Redis's counter is past what this node holds
            // before reading on (`script::raise_counter`).
            let raise = script::raise_counter(keys, log.latest_id());
            let raised = tokio::select! {
                raised = link.request(&raise) => raised,
                () = stop.cancelled() => return,
            };
            if let Err(e) = raised {
                tracing::debug!("Redis still unreachable: {e}");
                if pause(link, stop).await.is_err() {
                    return;
                }
                continue;
            }
        }
        let cmd = stream::read_after(&keys.stream, log.latest_id(), READ_BATCH, BLOCK_MS);
        let reply = tokio::select! {
            reply = link.request(&cmd) => reply,
            () = stop.cancelled() => return,
        };
        match reply.and_then(|value| stream::parse_xread(value).map_err(BrokerError::Reply)) {
            Ok(entries) => {
                if !up {
                    up = true;
                    metrics.up.set(1);
                    tracing::info!(redis = %link.target(), "following the Redis stream again");
                }
                ingest(log, metrics, entries, true);
            }
            Err(e) => {
                if up {
                    up = false;
                    metrics.up.set(0);
                    tracing::warn!(
                        "lost the Redis stream ({e}); serving what this node holds and \
                         reconnecting with backoff"
                    );
                }
                if pause(link, stop).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits until the link may try again; `Err` when the server stops meanwhile.
async fn pause(link: &Link, stop: &CancellationToken) -> Result<(), ()> {
    let wait = link.retry_in().await.max(MIN_PAUSE);
    tokio::select! {
        () = tokio::time::sleep(wait) => Ok(()),
        () = stop.cancelled() => Err(()),
    }
}

/// Stores entries in the node's log, in order; `timed`: record each one's append-to-seen time
/// (not for the history loaded at start).
pub fn ingest(log: &MessageLog, metrics: &BrokerMetrics, entries: Vec<Entry>, timed: bool) {
    let now = now_micros();
    for entry in entries {
        let sent = entry.sent_micros;
        match log.ingest(entry.message) {
            Ingested::Stored => metrics.followed.inc(),
            Ingested::Duplicate => {
                metrics.duplicates.inc();
                continue;
            }
            Ingested::AfterGap { lost } => {
                metrics.followed.inc();
                metrics.gap_messages.inc_by(lost);
                tracing::error!(
                    lost,
                    "the Redis stream lost messages this node had not read (Redis restarted \
                     without persistence?); readers behind them are told they missed them"
                );
            }
        }
        if timed {
            let micros = now.saturating_sub(sent);
            metrics.append_to_seen.observe(micros as f64 / 1e6);
        }
    }
}
