//! The one seam of the load generator: how a receiver learns about new messages.
//!
//! Each strategy module exposes `async fn run(config, Receiver)`: connect (reporting success or
//! failure once, for the connect phase), then receive until told to stop, reconnecting as a
//! browser would. Pacing ([`crate::schedule`]) and bookkeeping ([`crate::recorder`]) are shared.

mod longpoll;
mod messages;
mod poll;
mod sio;
mod socketio;
mod socketio_polling;
mod sse;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::context::Receiver;
use crate::scenario::{PollMode, StrategyKind, StrategySpec};

pub use messages::Item;
pub use poll::PollConfig;
/// For the benches' on-demand pollers ([`crate::bench_support`]).
pub(crate) use poll::Poller;

/// Pause before a receiver reconnects after losing its connection or session.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(250);
/// Deadline for ordinary requests and handshakes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the target can do, found out once before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `GET /messages?since=ID` answers only newer messages, with ids.
    pub cursor: bool,
    /// `GET /events` serves Server-Sent Events.
    pub sse: bool,
    /// Highest message id when the run started (receivers start reading after it).
    pub last_id: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedStrategy {
    #[error(
        "target does not support long polling: GET /messages has no `id`s, so it has no `since`/`wait` cursor; use --strategy poll, socketio or socketio-polling"
    )]
    Longpoll,
    #[error(
        "target does not support Server-Sent Events: GET /events is not an event stream; use --strategy poll, socketio or socketio-polling"
    )]
    Sse,
}

/// A strategy with everything its receivers need, ready to run many times.
#[derive(Debug, Clone)]
pub enum Strategy {
    Poll(PollConfig),
    Longpoll {
        wait: Duration,
        start_id: u64,
    },
    Sse,
    /// `catchup_from`: the start id for catch-up requests after a reconnect (`None`: the
    /// target has no cursors).
    Socketio {
        catchup_from: Option<u64>,
    },
    SocketioPolling {
        catchup_from: Option<u64>,
    },
}

impl Strategy {
    pub fn new(
        spec: &StrategySpec,
        caps: &Capabilities,
        seed: u64,
    ) -> Result<Strategy, UnsupportedStrategy> {
        Ok(match spec.kind {
            StrategyKind::Poll => Strategy::Poll(PollConfig {
                interval: spec
                    .interval
                    .unwrap_or(crate::scenario::DEFAULT_POLL_INTERVAL),
                mode: if caps.cursor {
                    spec.poll_mode
                } else {
                    PollMode::Full
                },
                etag: spec.etag,
                start_id: caps.last_id,
                seed,
            }),
            StrategyKind::Longpoll if !caps.cursor => return Err(UnsupportedStrategy::Longpoll),
            StrategyKind::Longpoll => Strategy::Longpoll {
                wait: spec.wait.unwrap_or(crate::scenario::DEFAULT_LONGPOLL_WAIT),
                start_id: caps.last_id,
            },
            StrategyKind::Sse if !caps.sse => return Err(UnsupportedStrategy::Sse),
            StrategyKind::Sse => Strategy::Sse,
            StrategyKind::Socketio => Strategy::Socketio {
                catchup_from: caps.cursor.then_some(caps.last_id),
            },
            StrategyKind::SocketioPolling => Strategy::SocketioPolling {
                catchup_from: caps.cursor.then_some(caps.last_id),
            },
        })
    }

    /// Runs one receiver until it is told to stop (or cannot connect).
    pub async fn run(&self, rx: Receiver) {
        // Each arm boxed: a receiver's task holds its own strategy's state, not the largest of
        // the five (the HTTP strategies' hyper futures would size every Socket.IO client).
        match self {
            Strategy::Poll(config) => Box::pin(poll::run(config, rx)).await,
            Strategy::Longpoll { wait, start_id } => {
                Box::pin(longpoll::run(*wait, *start_id, rx)).await
            }
            Strategy::Sse => Box::pin(sse::run(rx)).await,
            Strategy::Socketio { catchup_from } => Box::pin(socketio::run(rx, *catchup_from)).await,
            Strategy::SocketioPolling { catchup_from } => {
                Box::pin(socketio_polling::run(rx, *catchup_from)).await
            }
        }
    }
}

/// Waits `d` unless stopped first; false when stopped.
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.cancelled() => false,
    }
}
