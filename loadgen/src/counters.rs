//! Live counters of one run: requests, empty polls, errors by kind, bytes on the wire.
//!
//! Every field is an atomic updated with `Ordering::Relaxed`: each counter is an independent
//! tally, nothing else is published through it, and readers (progress bar, window snapshots)
//! only need a value that is eventually exact. The final read happens after every task that
//! writes them has been joined, which orders it after all the writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bytes through a group of connections, counted at the socket (see [`crate::net::CountingStream`]).
#[derive(Debug, Default)]
pub struct WireCounters {
    /// Client → server.
    pub up: AtomicU64,
    /// Server → client.
    pub down: AtomicU64,
    /// TCP connections opened (reconnects included).
    pub connections: AtomicU64,
    /// Counters every byte and connection is also added to (one node's of several, see
    /// [`crate::nodes`], adds to the run's total).
    pub parent: Option<Arc<WireCounters>>,
}

impl WireCounters {
    pub fn snapshot(&self) -> (u64, u64) {
        (self.up.load(Relaxed), self.down.load(Relaxed))
    }
}

/// What went wrong, counted per variant and rendered as snake_case keys in `results.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// TCP connect or HTTP/WebSocket handshake failed.
    Connect,
    /// A request or handshake took longer than its deadline.
    Timeout,
    /// The server answered with an unexpected HTTP status.
    HttpStatus,
    /// The server's answer could not be understood (bad JSON, bad packet).
    Protocol,
    /// The server closed a connection or session the client still needed.
    Closed,
    /// Reading or writing the socket failed.
    Io,
    /// A probe was due while its sender already had `sender::MAX_IN_FLIGHT` POSTs in flight:
    /// it could not leave (a failed send).
    InFlightLimit,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::HttpStatus,
        ErrorKind::Protocol,
        ErrorKind::Closed,
        ErrorKind::Io,
        ErrorKind::InFlightLimit,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Closed => "closed",
            ErrorKind::Io => "io",
            ErrorKind::InFlightLimit => "in_flight_limit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// All counters of one run, shared by its receivers, senders and the driver.
#[derive(Debug, Default)]
pub struct Counters {
    /// Receivers' bytes: the cost of the strategy itself.
    pub receiver_wire: Arc<WireCounters>,
    /// Senders' bytes (probe POSTs).
    pub sender_wire: Arc<WireCounters>,
    /// The generator's own control traffic: capability checks, health checks, /metrics scrapes.
    pub control_wire: Arc<WireCounters>,
    /// HTTP requests made by receivers.
    pub receiver_requests: AtomicU64,
    /// Poll / long-poll answers without a new message.
    pub empty_polls: AtomicU64,
    /// `304 Not Modified` answers.
    pub not_modified: AtomicU64,
    /// Poll ticks that started a request (on time or late).
    pub poll_ticks: AtomicU64,
    /// Poll ticks that started more than 2 ms (`schedule::LATE_AFTER`) after their scheduled instant.
    pub late_polls: AtomicU64,
    /// Poll ticks skipped because the previous poll was still running.
    pub skipped_polls: AtomicU64,
    /// Probe POSTs started.
    pub posts: AtomicU64,
    /// First deliveries of probes of this run (any phase).
    pub deliveries: AtomicU64,
    /// A receiver saw a probe it already had.
    pub duplicates: AtomicU64,
    /// A receiver saw a probe after a later probe of the same sender.
    pub out_of_order: AtomicU64,
    /// Times a receiver found its cursor ahead of the server's log (a restarted server whose
    /// ids started again) and read the log anew.
    pub log_restarts: AtomicU64,
    /// Receivers currently connected (up after their handshake, down when they give up).
    pub connected: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
}

impl Counters {
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].fetch_add(1, Relaxed);
    }

    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors[kind.index()].load(Relaxed)
    }

    pub fn errors_total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|k| self.error_count(*k)).sum()
    }

    /// Non-zero error counts by snake_case key.
    pub fn errors_by_kind(&self) -> BTreeMap<String, u64> {
        ErrorKind::ALL
            .iter()
            .map(|k| (k.key().to_string(), self.error_count(*k)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let (rx_up, rx_down) = self.receiver_wire.snapshot();
        CounterSnapshot {
            receiver_requests: self.receiver_requests.load(Relaxed),
            empty_polls: self.empty_polls.load(Relaxed),
            poll_ticks: self.poll_ticks.load(Relaxed),
            posts: self.posts.load(Relaxed),
            deliveries: self.deliveries.load(Relaxed),
            receiver_bytes_up: rx_up,
            receiver_bytes_down: rx_down,
        }
    }
}

/// Counter values at one instant, for measured-window deltas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub receiver_requests: u64,
    pub empty_polls: u64,
    pub poll_ticks: u64,
    pub posts: u64,
    pub deliveries: u64,
    pub receiver_bytes_up: u64,
    pub receiver_bytes_down: u64,
}

impl CounterSnapshot {
    /// `self − earlier`, field by field.
    pub fn since(&self, earlier: &CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            receiver_requests: self.receiver_requests - earlier.receiver_requests,
            empty_polls: self.empty_polls - earlier.empty_polls,
            poll_ticks: self.poll_ticks - earlier.poll_ticks,
            posts: self.posts - earlier.posts,
            deliveries: self.deliveries - earlier.deliveries,
            receiver_bytes_up: self.receiver_bytes_up - earlier.receiver_bytes_up,
            receiver_bytes_down: self.receiver_bytes_down - earlier.receiver_bytes_down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_counted_by_kind_and_rendered_snake_case() {
        let c = Counters::default();
        c.error(ErrorKind::HttpStatus);
        c.error(ErrorKind::HttpStatus);
        c.error(ErrorKind::Closed);
        let map = c.errors_by_kind();
        assert_eq!(map.get("http_status"), Some(&2));
        assert_eq!(map.get("closed"), Some(&1));
        assert_eq!(map.len(), 2);
        assert_eq!(c.errors_total(), 3);
    }

    #[test]
    fn snapshots_subtract() {
        let c = Counters::default();
        let a = c.snapshot();
        c.receiver_requests.fetch_add(5, Relaxed);
        c.receiver_wire.down.fetch_add(100, Relaxed);
        let d = c.snapshot().since(&a);
        assert_eq!(d.receiver_requests, 5);
        assert_eq!(d.receiver_bytes_down, 100);
    }
}
