//! Where sends and deliveries end up: which receiver saw which probe, when, whether it was new,
//! and which receivers were owed it.
//!
//! Memory is the constraint (10,000 receivers in one process), so a receiver does not own a
//! histogram: it owns a [`ReceiverLog`] (a few bytes per sender) and records latencies into a
//! few shared histogram shards, each behind a short `std::sync::Mutex` section that is never
//! held across an `.await`. Per-probe fan-out state lives in one [`ProbeTable`] of atomics.
//!
//! **Who is owed a probe.** A receiver is a member of the run from its first successful
//! connect until it gives up ([`Recorder::join`], [`Recorder::leave`]); one that loses its
//! connection and comes back stays a member and must catch up. A probe is owed to exactly the
//! members at the instant its POST left: the sender takes that instant and the member count
//! under the same lock the receivers join under ([`Recorder::begin_send`]), so the count and
//! the receivers' join instants agree. A delivery to a receiver that joined after the probe
//! left (history served to a late joiner) is counted apart, never as a delivery it was owed.
//!
//! **Loss in the tail.** A (probe, receiver) pair still missing when the run closes enters the
//! latency histograms censored at the close instant ([`Recorder::close`]): loss can only make
//! the tail longer, and percentiles at or above the first censored value are lower bounds.

mod cursor;
mod nodes;
mod shard;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::bootstrap::ProbeSamples;
use crate::counters::Counters;
use crate::results::{Delivery, new_latency_histogram};
use crate::schedule::LATE_AFTER;
pub use cursor::Seen;
use cursor::SenderCursor;
use pushpoll_wire::probe::Probe;
pub use shard::{MemberSpan, SentProbe, SentStatus, ShardTallies};

/// What happened to a probe's POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PostStatus {
    NotSent = 0,
    /// Left, no answer yet.
    InFlight = 1,
    Accepted = 2,
    /// Connect error, non-2xx answer, timeout, or it could not leave (in-flight bound).
    Failed = 3,
}

impl PostStatus {
    fn from_u8(v: u8) -> PostStatus {
        match v {
            1 => PostStatus::InFlight,
            2 => PostStatus::Accepted,
            3 => PostStatus::Failed,
            _ => PostStatus::NotSent,
        }
    }
}

/// How a delivery reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The strategy's own channel (a poll answer, an SSE event, a Socket.IO event).
    Live,
    /// A `GET /messages?since=` made after a reconnect to fetch what the break missed.
    Catchup,
}

/// Fan-out state of one probe.
#[derive(Debug, Default)]
struct ProbeSlot {
    status: AtomicU8,
    /// Receivers owed this probe (members when its POST left).
    expected: AtomicU32,
    /// Owed receivers that have seen it (first deliveries only).
    delivered: AtomicU32,
    /// ns since the run's epoch: intended send, actual send, 2xx answer, last first delivery.
    intended_ns: AtomicU64,
    sent_ns: AtomicU64,
    accepted_ns: AtomicU64,
    last_delivery_ns: AtomicU64,
}

impl ProbeSlot {
    fn status(&self) -> PostStatus {
        PostStatus::from_u8(self.status.load(Relaxed))
    }

    /// Owed receivers still waiting for it.
    fn missing(&self) -> u64 {
        u64::from(
            self.expected
                .load(Relaxed)
                .saturating_sub(self.delivered.load(Relaxed)),
        )
    }
}

/// One row of slots per sender, indexed by sequence number.
#[derive(Debug)]
struct ProbeTable {
    rows: Vec<Box<[ProbeSlot]>>,
}

impl ProbeTable {
    fn new(senders: usize, per_sender: usize) -> Self {
        let rows = (0..senders)
            .map(|_| (0..per_sender).map(|_| ProbeSlot::default()).collect())
            .collect();
        ProbeTable { rows }
    }

    fn slot(&self, sender: u32, seq: u64) -> Option<&ProbeSlot> {
        self.rows
            .get(sender as usize)
            .and_then(|row| row.get(usize::try_from(seq).ok()?))
    }

    fn slots(&self) -> impl Iterator<Item = &ProbeSlot> {
        self.rows.iter().flat_map(|r| r.iter())
    }
}

/// Latencies of one shard, µs, and the corrected ones by probe for the bootstrap.
struct Shard {
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
    by_probe: ProbeSamples,
}

/// The half-open window of intended send instants that is measured, ns since the epoch.
#[derive(Debug, Default)]
struct Window {
    from_ns: AtomicU64,
    to_ns: AtomicU64,
}

/// The generator's own timing error and the polls' answer times, µs (measured window only).
struct Timing {
    send_lag: Histogram<u64>,
    poll_answer: Histogram<u64>,
    poll_lag: Histogram<u64>,
}

/// Shared by every receiver and sender of a run.
pub struct Recorder {
    epoch: Instant,
    run_id: u32,
    table: ProbeTable,
    shards: Box<[Mutex<Shard>]>,
    timing: Mutex<Timing>,
    window: Window,
    /// Members now (see the module doc); sends read it under the same lock joins change it.
    members: Mutex<u64>,
    /// Signalled whenever a measured probe settles (reaches every owed receiver, or fails).
    fanout_done: tokio::sync::Notify,
    /// Set by [`Recorder::close`]: where missing pairs are censored, ns since the epoch.
    closed_ns: AtomicU64,
    /// Measured sends that left more than [`LATE_AFTER`] after their intended instant.
    late_sends: AtomicU64,
    /// Poll answers that missed a probe accepted before the poll was sent.
    stale_answers: AtomicU64,
    /// Measured first deliveries that came through a catch-up request.
    catchup_deliveries: AtomicU64,
    /// Deliveries of measured probes to receivers that joined after the probe left.
    extra_deliveries: AtomicU64,
    /// Every receiver's membership, by join order (see [`shard`]): what a merge of shards
    /// needs to know who was owed a probe another process sent.
    spans: Mutex<Vec<MemberSpan>>,
    /// Members now, mirrored outside the lock for the sharded drain's cheap check.
    member_count: AtomicU64,
    /// One shard of a sharded run (see [`shard`]): no censoring at the close (the merge
    /// censors against every shard's receivers), deliveries after the close ignored.
    sharded: bool,
}

/// One receiver's dedupe state and membership.
#[derive(Debug, Clone)]
pub struct ReceiverLog {
    shard: usize,
    senders: Box<[SenderCursor]>,
    /// When it joined the run, ns since the epoch (`None` until its first connect).
    joined_ns: Option<u64>,
    left: bool,
    /// Measured probes that reached it by a catch-up request and not (yet) live: a live copy
    /// arriving later is the server doing its job, not a duplicate.
    caught_up: Vec<(u32, u64)>,
    /// Its entry in the recorder's membership spans, once joined.
    span: Option<usize>,
}

impl ReceiverLog {
    pub fn observe(&mut self, sender: u32, seq: u64) -> Option<Seen> {
        self.senders
            .get_mut(sender as usize)
            .map(|c| c.observe(seq))
    }

    fn owes(&self, sent_ns: u64) -> bool {
        self.joined_ns.is_some_and(|j| j <= sent_ns)
    }

    /// Its entry in the recorder's membership spans, once joined.
    pub fn span(&self) -> Option<usize> {
        self.span
    }
}

/// What [`Recorder::begin_send`] fixed about one send.
#[derive(Debug, Clone, Copy)]
pub struct SendTicket {
    pub intended_ns: u64,
    pub sent_ns: u64,
}

impl Recorder {
    /// `per_sender`: how many probes each sender may send (a bound on sequence numbers).
    pub fn new(epoch: Instant, run_id: u32, senders: usize, per_sender: usize) -> Self {
        let shard_count = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        let shards = (0..shard_count)
            .map(|_| {
                Mutex::new(Shard {
                    corrected: new_latency_histogram(),
                    uncorrected: new_latency_histogram(),
                    by_probe: ProbeSamples::new(),
                })
            })
            .collect();
        Recorder {
            epoch,
            run_id,
            table: ProbeTable::new(senders, per_sender),
            shards,
            timing: Mutex::new(Timing {
                send_lag: new_latency_histogram(),
                poll_answer: new_latency_histogram(),
                poll_lag: new_latency_histogram(),
            }),
            window: Window::default(),
            members: Mutex::new(0),
            fanout_done: tokio::sync::Notify::new(),
            closed_ns: AtomicU64::new(0),
            late_sends: AtomicU64::new(0),
            stale_answers: AtomicU64::new(0),
            catchup_deliveries: AtomicU64::new(0),
            extra_deliveries: AtomicU64::new(0),
            spans: Mutex::new(Vec::new()),
            member_count: AtomicU64::new(0),
            sharded: false,
        }
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    pub fn run_id(&self) -> u32 {
        self.run_id
    }

    /// Nanoseconds since the epoch (saturating at 0 for instants before it).
    pub fn ns_since_epoch(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn new_receiver_log(&self, receiver: usize) -> ReceiverLog {
        ReceiverLog {
            shard: receiver % self.shards.len(),
            senders: vec![SenderCursor::default(); self.table.rows.len()].into_boxed_slice(),
            joined_ns: None,
            left: false,
            caught_up: Vec::new(),
            span: None,
        }
    }

    /// The receiver connected for the first time: it is owed every probe sent from now on.
    pub fn join(&self, log: &mut ReceiverLog) {
        if log.joined_ns.is_some() {
            return;
        }
        let mut members = lock(&self.members);
        let joined_ns = self.ns_since_epoch(Instant::now());
        log.joined_ns = Some(joined_ns);
        *members += 1;
        self.member_count.store(*members, Relaxed);
        let mut spans = lock(&self.spans);
        log.span = Some(spans.len());
        spans.push(MemberSpan {
            joined_ns,
            left_ns: None,
        });
    }

    /// The receiver gave up for good: probes sent from now on are not owed to it.
    pub fn leave(&self, log: &mut ReceiverLog) {
        if log.joined_ns.is_some() && !std::mem::replace(&mut log.left, true) {
            let mut members = lock(&self.members);
            *members = members.saturating_sub(1);
            self.member_count.store(*members, Relaxed);
            let left_ns = self.ns_since_epoch(Instant::now());
            if let Some(i) = log.span {
                let mut spans = lock(&self.spans);
                if let Some(span) = spans.get_mut(i) {
                    span.left_ns = Some(left_ns);
                }
            }
        }
    }

    /// Probes intended in `[from, to)` are measured.
    pub fn set_window(&self, from: Instant, to: Instant) {
        self.window
            .from_ns
            .store(self.ns_since_epoch(from), Relaxed);
        self.window.to_ns.store(self.ns_since_epoch(to), Relaxed);
    }

    fn is_measured(&self, intended_ns: u64) -> bool {
        intended_ns >= self.window.from_ns.load(Relaxed)
            && intended_ns < self.window.to_ns.load(Relaxed)
    }

    /// A sender's POST of probe `(sender, seq)` leaves now: fixes its send instant and the
    /// receivers owed it, records the send lag, and marks it in flight. Called before the POST
    /// so that a fast push cannot beat the bookkeeping.
    pub fn begin_send(&self, sender: u32, seq: u64, intended: Instant) -> SendTicket {
        let (sent, expected) = {
            let members = lock(&self.members);
            (Instant::now(), *members)
        };
        let intended_ns = self.ns_since_epoch(intended);
        let sent_ns = self.ns_since_epoch(sent);
        if let Some(slot) = self.table.slot(sender, seq) {
            slot.intended_ns.store(intended_ns, Relaxed);
            slot.sent_ns.store(sent_ns, Relaxed);
            slot.expected
                .store(u32::try_from(expected).unwrap_or(u32::MAX), Relaxed);
            slot.status.store(PostStatus::InFlight as u8, Relaxed);
        }
        if self.is_measured(intended_ns) {
            let lag = sent.saturating_duration_since(intended);
            if lag > LATE_AFTER {
                self.late_sends.fetch_add(1, Relaxed);
            }
            let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
            lock(&self.timing).send_lag.saturating_record(us);
        }
        SendTicket {
            intended_ns,
            sent_ns,
        }
    }

    /// The POST of `(sender, seq)` was answered (`Accepted`) or failed, at `at`.
    pub fn end_send(&self, sender: u32, seq: u64, status: PostStatus, at: Instant) {
        if let Some(slot) = self.table.slot(sender, seq) {
            if status == PostStatus::Accepted {
                slot.accepted_ns.store(self.ns_since_epoch(at), Relaxed);
            }
            slot.status.store(status as u8, Relaxed);
            if self.is_settled(slot) {
                self.fanout_done.notify_waiters();
            }
        }
    }

    /// A receiver got message text at `now`. Ignores texts that are not probes of this run.
    /// Returns the corrected latency (µs) of an owed first delivery of a measured probe.
    pub fn deliver_text(
        &self,
        log: &mut ReceiverLog,
        text: &str,
        now: Instant,
        c: &Counters,
        via: Via,
    ) -> Option<u64> {
        let probe = Probe::parse(text).ok()?;
        self.deliver(log, &probe, now, c, via)
    }

    /// Returns the corrected latency (µs) of an owed first delivery of a measured probe.
    pub fn deliver(
        &self,
        log: &mut ReceiverLog,
        p: &Probe,
        now: Instant,
        c: &Counters,
        via: Via,
    ) -> Option<u64> {
        if p.run_id != self.run_id || (self.sharded && self.closed_ns.load(Relaxed) != 0) {
            return None;
        }
        let measured = self.is_measured(p.intended_ns);
        match log.observe(p.sender, p.seq) {
            None => return None,
            Some(Seen::Duplicate) => {
                let key = (p.sender, p.seq);
                if let Some(pos) = log.caught_up.iter().position(|k| *k == key) {
                    // Fetched by a catch-up, now here live as well: it did not reach the
                    // receiver only by the catch-up, and the server sent it once.
                    if via == Via::Live {
                        log.caught_up.swap_remove(pos);
                        self.catchup_deliveries.fetch_sub(1, Relaxed);
                    }
                } else if measured && via == Via::Live {
                    c.duplicates.fetch_add(1, Relaxed);
                }
                return None;
            }
            Some(Seen::NewOutOfOrder) if measured => {
                c.out_of_order.fetch_add(1, Relaxed);
            }
            Some(_) => {}
        }
        c.deliveries.fetch_add(1, Relaxed);
        if !measured {
            return None;
        }
        if !log.owes(p.sent_ns) {
            self.extra_deliveries.fetch_add(1, Relaxed);
            return None;
        }
        if via == Via::Catchup {
            self.catchup_deliveries.fetch_add(1, Relaxed);
            log.caught_up.push((p.sender, p.seq));
        }
        let now_ns = self.ns_since_epoch(now);
        let probe = self.probe_index(p.sender, p.seq);
        self.record_latency(log.shard, probe, now_ns, (p.intended_ns, p.sent_ns), 1);
        if let Some(slot) = self.table.slot(p.sender, p.seq) {
            slot.last_delivery_ns.fetch_max(now_ns, Relaxed);
            let delivered = slot.delivered.fetch_add(1, Relaxed) + 1;
            if self.is_settled(slot)
                || (self.sharded && u64::from(delivered) >= self.member_count.load(Relaxed))
            {
                self.fanout_done.notify_waiters();
            }
        }
        Some((now_ns.saturating_sub(p.intended_ns) / 1_000).max(1))
    }

    /// A probe's index among all of the run's probes (the bootstrap's resampling unit).
    fn probe_index(&self, sender: u32, seq: u64) -> u32 {
        let per_sender = self.table.rows.first().map_or(0, |r| r.len()) as u64;
        u32::try_from(u64::from(sender) * per_sender + seq).unwrap_or(u32::MAX)
    }

    /// Records `n` pairs of `probe` received (or censored) at `now_ns`; `from` holds the
    /// probe's intended and actual send instants.
    fn record_latency(&self, shard: usize, probe: u32, now_ns: u64, from: (u64, u64), n: u64) {
        let us = |from_ns: u64| (now_ns.saturating_sub(from_ns) / 1_000).max(1);
        let corrected = us(from.0);
        let mut shard = lock(&self.shards[shard]);
        // `saturating_record_n` clamps values above the histogram's range instead of failing.
        shard.corrected.saturating_record_n(corrected, n);
        shard.uncorrected.saturating_record_n(us(from.1), n);
        for _ in 0..n {
            shard.by_probe.record(probe, corrected);
        }
    }

    /// A poll sent at `requested` was answered (body read) at `answered`: the server's share
    /// of a poll's latency. Only polls sent inside the measured window are recorded.
    pub fn poll_answered(&self, requested: Instant, answered: Instant) {
        if self.is_measured(self.ns_since_epoch(requested)) {
            let us = answered.saturating_duration_since(requested).as_micros();
            lock(&self.timing)
                .poll_answer
                .saturating_record(u64::try_from(us).unwrap_or(u64::MAX).max(1));
        }
    }

    /// A poll tick due at `due` started at `started`: the generator's own lateness, which
    /// bounds how much of a poll's latency is the generator's (window only).
    pub fn poll_tick(&self, due: Instant, started: Instant) {
        if self.is_measured(self.ns_since_epoch(due)) {
            let us = started.saturating_duration_since(due).as_micros();
            lock(&self.timing)
                .poll_lag
                .saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
        }
    }

    /// After a poll answer has been applied: was it stale, i.e. did it leave out a measured
    /// probe owed to this receiver whose POST had been answered before the poll was sent?
    /// Counts it once, whenever the poll was made (the drain's polls too).
    pub fn check_stale(&self, log: &mut ReceiverLog, requested: Instant) -> bool {
        let requested_ns = self.ns_since_epoch(requested);
        let mut stale = false;
        for (sender, cursor) in (0u32..).zip(log.senders.iter_mut()) {
            let joined = log.joined_ns;
            let owed = |slot: &ProbeSlot| joined.is_some_and(|j| j <= slot.sent_ns.load(Relaxed));
            // Probes below `settled_to` are seen, failed, or not owed: never rescanned.
            let mut seq = cursor.settled_to.max(cursor.next);
            let mut settled = true;
            while let Some(slot) = self.table.slot(sender, seq) {
                let intended = slot.intended_ns.load(Relaxed);
                if slot.status() == PostStatus::NotSent || intended > requested_ns {
                    break;
                }
                let accepted = slot.accepted_ns.load(Relaxed);
                let resolved = cursor.has_seen(seq)
                    || slot.status() == PostStatus::Failed
                    || (slot.status() != PostStatus::InFlight && !owed(slot));
                if !resolved
                    && accepted != 0
                    && accepted < requested_ns
                    && owed(slot)
                    && self.is_measured(intended)
                {
                    stale = true;
                }
                settled &= resolved;
                if settled {
                    cursor.settled_to = seq + 1;
                }
                seq += 1;
            }
        }
        if stale {
            self.stale_answers.fetch_add(1, Relaxed);
        }
        stale
    }

    /// Resolves the next time a measured probe settles (create it, `enable` it, then check
    /// [`Recorder::all_settled`], so no wake-up is lost in between).
    pub fn fanout_progress(&self) -> tokio::sync::futures::Notified<'_> {
        self.fanout_done.notified()
    }

    /// Nanoseconds from probe `(sender, seq)`'s intended send instant to its last first
    /// delivery, once every owed receiver has it; `None` until then (or for a probe outside
    /// the table or the measured window). The benches time single deliveries with it.
    pub fn fanout_ns(&self, sender: u32, seq: u64) -> Option<u64> {
        let slot = self.table.slot(sender, seq)?;
        let intended = slot.intended_ns.load(Relaxed);
        (slot.status() == PostStatus::Accepted
            && self.is_measured(intended)
            && slot.expected.load(Relaxed) > 0
            && slot.missing() == 0)
            .then(|| slot.last_delivery_ns.load(Relaxed).saturating_sub(intended))
    }

    /// A probe needs nothing more: it failed, or every owed receiver has it.
    fn is_settled(&self, slot: &ProbeSlot) -> bool {
        match slot.status() {
            PostStatus::Failed => true,
            PostStatus::Accepted => slot.missing() == 0,
            PostStatus::NotSent | PostStatus::InFlight => false,
        }
    }

    /// True when every measured probe that left has settled (for a shard: see
    /// [`Recorder::all_settled_sharded`]).
    pub fn all_settled(&self) -> bool {
        if self.sharded {
            return self.all_settled_sharded();
        }
        self.measured_slots().all(|s| self.is_settled(s))
    }

    fn measured_slots(&self) -> impl Iterator<Item = &ProbeSlot> {
        self.table.slots().filter(|s| {
            s.status() != PostStatus::NotSent && self.is_measured(s.intended_ns.load(Relaxed))
        })
    }

    /// Ends the run's bookkeeping at `at`: every owed pair still missing (POSTs still
    /// unanswered included) enters the latency histograms censored at `at`. Returns the number
    /// of POSTs that were still unanswered. Call once, when the drain ends.
    pub fn close(&self, at: Instant) -> u64 {
        let at_ns = self.ns_since_epoch(at);
        if self.closed_ns.swap(at_ns.max(1), Relaxed) != 0 {
            return 0;
        }
        if self.sharded {
            // The merge censors, against the receivers of every shard.
            return self
                .measured_slots()
                .filter(|s| s.status() == PostStatus::InFlight)
                .count() as u64;
        }
        let mut unanswered = 0;
        for (sender, row) in (0u32..).zip(&self.table.rows) {
            for (seq, slot) in (0u64..).zip(row.iter()) {
                let intended = slot.intended_ns.load(Relaxed);
                if slot.status() == PostStatus::NotSent || !self.is_measured(intended) {
                    continue;
                }
                unanswered += u64::from(slot.status() == PostStatus::InFlight);
                let missing = slot.missing();
                if missing > 0 {
                    let from = (intended, slot.sent_ns.load(Relaxed));
                    let probe = self.probe_index(sender, seq);
                    self.record_latency(0, probe, at_ns, from, missing);
                }
            }
        }
        unanswered
    }

    /// Measured probes, their fates and the receivers still owed one.
    pub fn delivery(&self, counters: &Counters) -> Delivery {
        let mut d = Delivery::default();
        for slot in self.measured_slots() {
            let expected = u64::from(slot.expected.load(Relaxed));
            let delivered = expected - slot.missing();
            match slot.status() {
                PostStatus::Accepted => d.probes_sent += 1,
                PostStatus::Failed => {
                    d.probes_failed += 1;
                    d.missing_from_failed_sends += expected - delivered;
                }
                PostStatus::InFlight => {
                    d.probes_unanswered += 1;
                    d.missing_from_failed_sends += expected - delivered;
                }
                PostStatus::NotSent => {}
            }
            d.expected += expected;
            d.delivered += delivered;
        }
        d.missing = d.expected - d.delivered;
        d.duplicates = counters.duplicates.load(Relaxed);
        d.out_of_order = counters.out_of_order.load(Relaxed);
        d.delivered_by_catchup = self.catchup_deliveries.load(Relaxed);
        d.extra_deliveries = self.extra_deliveries.load(Relaxed);
        d
    }

    /// Measured sends that left late (more than [`LATE_AFTER`] after their intended instant).
    pub fn late_sends(&self) -> u64 {
        self.late_sends.load(Relaxed)
    }

    pub fn stale_answers(&self) -> u64 {
        self.stale_answers.load(Relaxed)
    }

    /// Merged corrected and uncorrected histograms (censored pairs included once the recorder
    /// is closed), per-probe fan-out completion times, send lag and poll answer times.
    pub fn histograms(&self) -> Histograms {
        let mut corrected = new_latency_histogram();
        let mut uncorrected = new_latency_histogram();
        let mut by_probe = ProbeSamples::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            by_probe.merge(shard.by_probe.clone());
            // Same bounds everywhere, so `add` cannot fail.
            corrected
                .add(&shard.corrected)
                .expect("shards share bounds");
            uncorrected
                .add(&shard.uncorrected)
                .expect("shards share bounds");
        }
        let closed_ns = self.closed_ns.load(Relaxed);
        let mut fanout = new_latency_histogram();
        let (mut censored, mut censored_from_us) = (0, u64::MAX);
        let mut fanout_censored_from_us = u64::MAX;
        for slot in self.measured_slots() {
            let intended = slot.intended_ns.load(Relaxed);
            let missing = slot.missing();
            if missing == 0 && slot.expected.load(Relaxed) > 0 {
                let ns = slot.last_delivery_ns.load(Relaxed).saturating_sub(intended);
                fanout.saturating_record((ns / 1_000).max(1));
            } else if missing > 0 && closed_ns != 0 {
                let us = (closed_ns.saturating_sub(intended) / 1_000).max(1);
                censored += missing;
                censored_from_us = censored_from_us.min(us);
                fanout_censored_from_us = fanout_censored_from_us.min(us);
                fanout.saturating_record(us);
            }
        }
        let timing = lock(&self.timing);
        Histograms {
            corrected,
            uncorrected,
            fanout,
            censored,
            censored_from_us: (censored > 0).then_some(censored_from_us),
            fanout_censored_from_us: (fanout_censored_from_us != u64::MAX)
                .then_some(fanout_censored_from_us),
            send_lag: timing.send_lag.clone(),
            poll_answer: timing.poll_answer.clone(),
            poll_lag: timing.poll_lag.clone(),
            by_probe,
        }
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (counters only).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Histograms {
    pub corrected: Histogram<u64>,
    pub uncorrected: Histogram<u64>,
    pub fanout: Histogram<u64>,
    /// Missing (probe, receiver) pairs recorded at the close instant.
    pub censored: u64,
    /// The smallest censored latency: percentiles at or above it are lower bounds.
    pub censored_from_us: Option<u64>,
    pub fanout_censored_from_us: Option<u64>,
    pub send_lag: Histogram<u64>,
    pub poll_answer: Histogram<u64>,
    /// Poll ticks: started − due, µs.
    pub poll_lag: Histogram<u64>,
    /// The corrected latencies (censored pairs included) by probe, for confidence intervals.
    pub by_probe: ProbeSamples,
}

#[cfg(test)]
mod tests;
