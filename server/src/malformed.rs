//! What the Socket.IO door does with a malformed `message` event: counts it, always
//! (`pushpoll_socket_events_rejected_total`); logs it within a budget of WARN lines per second per
//! server (`--malformed-log-per-sec`), the rest summed up in one "suppressed K" line written with
//! the next line the budget allows; and disconnects a socket that sends more than
//! `--max-malformed-per-sec` in one second (`pushpoll_socket_malformed_disconnects_total`).
//!
//! Why: one WARN line per event let a single WebSocket turn 40 MB of `42["message",1]` into
//! 456 MB of log, and writing it stalled the server. The chat page never sends a malformed event,
//! so a socket sending a hundred a second is broken or hostile; parsing and counting its flood
//! costs CPU even when nothing is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use prometheus::IntCounter;
use socketioxide::SocketError;
use socketioxide::extract::SocketRef;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::rate::{Admit, RateLimit};

/// The per-server policy (one per Socket.IO door).
#[derive(Debug)]
pub struct MalformedPolicy {
    lines: RateLimit,
    lines_per_second: u32,
    per_socket: u32,
    rejected: IntCounter,
    disconnects: IntCounter,
}

/// One socket's count of malformed events in the current second.
#[derive(Debug)]
pub struct Strikes {
    window: RateLimit,
    /// Set once a disconnect went through (or is being attempted), so it is counted once.
    disconnected: AtomicBool,
}

impl MalformedPolicy {
    pub fn new(config: &Config, metrics: &Metrics) -> Self {
        MalformedPolicy {
            lines: RateLimit::per_second(config.malformed_log_per_sec),
            lines_per_second: config.malformed_log_per_sec,
            per_socket: config.max_malformed_per_sec,
            rejected: metrics.socket_events_rejected.clone(),
            disconnects: metrics.socket_malformed_disconnects.clone(),
        }
    }

    /// A new socket's strikes; None when sockets are never disconnected for malformed events.
    pub fn strikes(&self) -> Option<Arc<Strikes>> {
        (self.per_socket > 0).then(|| {
            Arc::new(Strikes {
                window: RateLimit::per_second(self.per_socket),
                disconnected: AtomicBool::new(false),
            })
        })
    }

    /// Counts, maybe logs, and maybe disconnects `socket` for one malformed event.
    pub fn reject(&self, socket: &SocketRef, strikes: Option<&Strikes>, reason: &str) {
        self.rejected.inc();
        let now = Instant::now();
        let loggable = self.log_line(now);
        if loggable {
            tracing::warn!(sid = %socket.id, "ignored a malformed Socket.IO `message` event: {reason}");
        }
        let Some(strikes) = strikes else { return };
        if strikes.window.admit(now) != Admit::No
            || strikes.disconnected.swap(true, Ordering::AcqRel)
        {
            return;
        }
        match socket.clone().disconnect() {
            Ok(()) => {
                self.disconnects.inc();
                if loggable {
                    tracing::warn!(
                        sid = %socket.id,
                        "disconnected a socket that sent over {} malformed `message` events in a second (--max-malformed-per-sec)",
                        self.per_socket
                    );
                }
            }
            // Its send queue is full: tried again at its next malformed event.
            Err(SocketError::InternalChannelFull) => {
                strikes.disconnected.store(false, Ordering::Release)
            }
            // Gone already.
            Err(SocketError::Closed) => {}
        }
    }

    /// Whether this event's line fits the budget; writes the "suppressed K" line first if lines
    /// were dropped since the last one.
    fn log_line(&self, now: Instant) -> bool {
        match self.lines.admit(now) {
            Admit::Yes { refused_before } => {
                if refused_before > 0 {
                    tracing::warn!(
                        "suppressed {refused_before} warnings about malformed Socket.IO `message` events (at most {} a second, --malformed-log-per-sec; pushpoll_socket_events_rejected_total counts them all)",
                        self.lines_per_second
                    );
                }
                true
            }
            Admit::No => false,
        }
    }
}
