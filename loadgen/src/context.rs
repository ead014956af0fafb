//! What every receiver and sender of one run shares: the target, the counters, the recorder and
//! the stop signals. Passed as an `Arc`, never a global.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::counters::{Counters, ErrorKind};
use crate::net::TargetAddr;
use crate::recorder::{ReceiverLog, Recorder, Via};

pub struct RunContext {
    pub target: Arc<TargetAddr>,
    pub counters: Counters,
    pub recorder: Recorder,
    /// Tells receivers to stop at their next safe point (end of the drain, or abort).
    pub stop_receivers: CancellationToken,
    /// Tells senders to stop early (Ctrl-C or the server died).
    pub abort: CancellationToken,
    /// Ends POSTs still in flight when the run closes (they count as unanswered).
    pub stop_sends: CancellationToken,
    /// Set by a poll receiver that found messages without `id` (a target without cursors).
    pub fell_back_to_full_list: AtomicBool,
    /// Receivers that gave up during the connect phase.
    pub connect_failed: AtomicU64,
    /// Woken whenever a receiver finishes connecting (or fails to).
    pub connect_progress: Notify,
    /// The chat's nodes (`--target URL1,URL2,…`); one for a single target.
    pub nodes: crate::nodes::Nodes,
}

impl RunContext {
    pub fn new(target: Arc<TargetAddr>, recorder: Recorder, abort: CancellationToken) -> Self {
        let counters = Counters::default();
        let nodes = crate::nodes::Nodes::single(target.clone(), &counters);
        RunContext {
            target,
            counters,
            nodes,
            recorder,
            stop_receivers: abort.child_token(),
            stop_sends: abort.child_token(),
            abort,
            fell_back_to_full_list: AtomicBool::new(false),
            connect_failed: AtomicU64::new(0),
            connect_progress: Notify::new(),
        }
    }
}

/// One simulated receiver's identity and dedupe state; strategies own one each.
pub struct Receiver {
    pub id: usize,
    pub ctx: Arc<RunContext>,
    log: ReceiverLog,
    /// Still in the connect phase (not yet reported as connected or failed).
    connecting: bool,
    /// Highest message id delivered to it (for a catch-up after a reconnect).
    last_id: Option<u64>,
    /// Connected again after losing its connection: it owes itself a catch-up request.
    pending_catchup: bool,
}

impl Receiver {
    pub fn new(id: usize, ctx: Arc<RunContext>) -> Self {
        let log = ctx.recorder.new_receiver_log(id);
        ctx.nodes.for_index(id).placed();
        Receiver {
            id,
            ctx,
            log,
            connecting: true,
            last_id: None,
            pending_catchup: false,
        }
    }

    /// The first handshake succeeded: this receiver counts as connected, and is owed every
    /// probe sent from now on (reconnects keep it owed: it must catch up).
    pub fn connected(&mut self) {
        if !self.connecting {
            self.pending_catchup = true;
        }
        if std::mem::take(&mut self.connecting) {
            self.ctx.recorder.join(&mut self.log);
            self.ctx.nodes.for_index(self.id).joined(self.log.span());
            self.ctx.counters.connected.fetch_add(1, Relaxed);
            self.ctx.connect_progress.notify_one();
        }
    }

    /// The first handshake failed: this receiver gives up and is not expected to receive.
    pub fn connect_failed(&mut self, kind: ErrorKind) {
        self.error(kind);
        if std::mem::take(&mut self.connecting) {
            self.ctx.connect_failed.fetch_add(1, Relaxed);
            self.ctx.connect_progress.notify_one();
        }
    }

    pub fn is_connecting(&self) -> bool {
        self.connecting
    }

    /// A message with this id was delivered (through any channel).
    pub fn saw_id(&mut self, id: u64) {
        self.last_id = Some(self.last_id.map_or(id, |l| l.max(id)));
    }

    pub fn last_id(&self) -> Option<u64> {
        self.last_id
    }

    /// True once after each reconnect: the caller should catch up now.
    pub fn take_pending_catchup(&mut self) -> bool {
        std::mem::take(&mut self.pending_catchup)
    }

    pub fn error(&self, kind: ErrorKind) {
        self.ctx.counters.error(kind);
    }

    pub fn request(&self) {
        self.ctx.nodes.for_index(self.id).request();
        self.ctx.counters.receiver_requests.fetch_add(1, Relaxed);
    }

    /// The server's log started again (its ids restarted): this receiver read it anew.
    pub fn log_restarted(&self) {
        self.ctx.counters.log_restarts.fetch_add(1, Relaxed);
    }

    pub fn empty_poll(&self) {
        self.ctx.counters.empty_polls.fetch_add(1, Relaxed);
    }

    /// A chat message text arrived at `now` through the strategy's own channel.
    pub fn deliver_text(&mut self, text: &str, now: Instant) {
        self.deliver_text_via(text, now, Via::Live);
    }

    pub fn deliver_text_via(&mut self, text: &str, now: Instant, via: Via) {
        let ctx = &self.ctx;
        let owed = ctx
            .recorder
            .deliver_text(&mut self.log, text, now, &ctx.counters, via);
        if let Some(latency_us) = owed.filter(|_| ctx.nodes.is_several()) {
            ctx.nodes.for_index(self.id).delivered(latency_us);
        }
    }

    /// The node this receiver talks to (its own index mod the number of `--target` nodes).
    pub fn target(&self) -> Arc<TargetAddr> {
        self.ctx.nodes.for_index(self.id).target.clone()
    }

    /// Where its connections' bytes are counted (its node's, which adds to the run's total).
    pub fn wire(&self) -> Arc<crate::counters::WireCounters> {
        self.ctx.nodes.for_index(self.id).receiver_wire.clone()
    }

    /// After a poll answer (or a 304) to a request sent at `requested` was applied: counts it
    /// if it left out a probe already accepted when the request was sent.
    pub fn check_stale(&mut self, requested: Instant) {
        self.ctx.recorder.check_stale(&mut self.log, requested);
    }

    pub fn stopped(&self) -> &CancellationToken {
        &self.ctx.stop_receivers
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.ctx.recorder.leave(&mut self.log);
        // A receiver that ends before reporting (a panic, a stop during connect) still reports,
        // so the connect phase never waits for it.
        if self.connecting {
            self.ctx.connect_failed.fetch_add(1, Relaxed);
            self.ctx.connect_progress.notify_one();
        }
    }
}
