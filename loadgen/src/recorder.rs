//! Where deliveries end up: which receiver saw which probe, when, and whether it was new.
//!
//! Memory is the constraint (10,000 receivers in one process), so a receiver does not own a
//! histogram: it owns a [`ReceiverLog`] (a few bytes per sender) and records latencies into a
//! few shared histogram shards, each behind a short `std::sync::Mutex` section that is never
//! held across an `.await`. Per-probe fan-out state lives in one [`ProbeTable`] of atomics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::codec::probe::Probe;
use crate::counters::Counters;
use crate::results::{Delivery, new_latency_histogram};

/// What happened to a probe's POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PostStatus {
    NotSent = 0,
    Accepted = 1,
    Failed = 2,
}

/// Fan-out state of one probe.
#[derive(Debug, Default)]
struct ProbeSlot {
    status: AtomicU8,
    /// Receivers that have seen it (first deliveries only).
    delivered: AtomicU32,
    /// Intended send instant, ns since the run's epoch (set by the sender).
    intended_ns: AtomicU64,
    /// Latest first-delivery instant, ns since the run's epoch.
    last_delivery_ns: AtomicU64,
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

/// Latencies of one shard, µs.
struct Shard {
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
}

/// The half-open window of intended send instants that is measured, ns since the epoch.
#[derive(Debug, Default)]
struct Window {
    from_ns: AtomicU64,
    to_ns: AtomicU64,
}

/// Shared by every receiver and sender of a run.
pub struct Recorder {
    epoch: Instant,
    run_id: u32,
    table: ProbeTable,
    shards: Box<[Mutex<Shard>]>,
    window: Window,
    /// Signalled whenever a measured probe reaches every receiver (the drain waits on it).
    fanout_done: tokio::sync::Notify,
    /// Receivers expected to see each measured probe (set when the measure phase starts).
    receivers: AtomicU64,
}

/// The verdict on one delivery, from a receiver's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    New,
    /// New, but a later probe of the same sender came first.
    NewOutOfOrder,
    Duplicate,
}

/// What one receiver has seen of each sender: everything below `next`, plus a short list of
/// sequence numbers above it (gaps still open). Normally `ahead` is empty and never allocates.
#[derive(Debug, Clone, Default)]
struct SenderCursor {
    next: u64,
    max_seen: Option<u64>,
    ahead: Vec<u64>,
}

impl SenderCursor {
    fn observe(&mut self, seq: u64) -> Seen {
        if seq < self.next || self.ahead.contains(&seq) {
            return Seen::Duplicate;
        }
        let out_of_order = self.max_seen.is_some_and(|m| seq < m);
        self.max_seen = Some(self.max_seen.map_or(seq, |m| m.max(seq)));
        if seq == self.next {
            self.next += 1;
            while let Some(pos) = self.ahead.iter().position(|&s| s == self.next) {
                self.ahead.swap_remove(pos);
                self.next += 1;
            }
        } else {
            self.ahead.push(seq);
        }
        if out_of_order {
            Seen::NewOutOfOrder
        } else {
            Seen::New
        }
    }
}

/// One receiver's dedupe state.
#[derive(Debug, Clone)]
pub struct ReceiverLog {
    shard: usize,
    senders: Box<[SenderCursor]>,
}

impl ReceiverLog {
    pub fn observe(&mut self, sender: u32, seq: u64) -> Option<Seen> {
        self.senders
            .get_mut(sender as usize)
            .map(|c| c.observe(seq))
    }
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
                })
            })
            .collect();
        Recorder {
            epoch,
            run_id,
            table: ProbeTable::new(senders, per_sender),
            shards,
            window: Window::default(),
            fanout_done: tokio::sync::Notify::new(),
            receivers: AtomicU64::new(0),
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
        }
    }

    /// Probes intended in `[from, to)` are measured; `receivers` is who should get each.
    pub fn set_window(&self, from: Instant, to: Instant, receivers: u64) {
        self.window
            .from_ns
            .store(self.ns_since_epoch(from), Relaxed);
        self.window.to_ns.store(self.ns_since_epoch(to), Relaxed);
        self.receivers.store(receivers, Relaxed);
    }

    fn is_measured(&self, intended_ns: u64) -> bool {
        intended_ns >= self.window.from_ns.load(Relaxed)
            && intended_ns < self.window.to_ns.load(Relaxed)
    }

    /// Called by a sender before its POST (so a fast push cannot beat the bookkeeping).
    pub fn probe_intended(&self, sender: u32, seq: u64, intended_ns: u64) {
        if let Some(slot) = self.table.slot(sender, seq) {
            slot.intended_ns.store(intended_ns, Relaxed);
        }
    }

    pub fn probe_posted(&self, sender: u32, seq: u64, status: PostStatus) {
        if let Some(slot) = self.table.slot(sender, seq) {
            slot.status.store(status as u8, Relaxed);
        }
    }

    /// A receiver got message text at `now`. Ignores texts that are not probes of this run.
    pub fn deliver_text(&self, log: &mut ReceiverLog, text: &str, now: Instant, c: &Counters) {
        if let Ok(probe) = Probe::parse(text) {
            self.deliver(log, &probe, now, c);
        }
    }

    pub fn deliver(&self, log: &mut ReceiverLog, p: &Probe, now: Instant, c: &Counters) {
        if p.run_id != self.run_id {
            return;
        }
        match log.observe(p.sender, p.seq) {
            None => return,
            Some(Seen::Duplicate) => {
                c.duplicates.fetch_add(1, Relaxed);
                return;
            }
            Some(Seen::NewOutOfOrder) => {
                c.out_of_order.fetch_add(1, Relaxed);
            }
            Some(Seen::New) => {}
        }
        c.deliveries.fetch_add(1, Relaxed);
        let now_ns = self.ns_since_epoch(now);
        if !self.is_measured(p.intended_ns) {
            return;
        }
        self.record_latency(log.shard, now_ns, p);
        if let Some(slot) = self.table.slot(p.sender, p.seq) {
            slot.last_delivery_ns.fetch_max(now_ns, Relaxed);
            let n = slot.delivered.fetch_add(1, Relaxed) + 1;
            if u64::from(n) >= self.receivers.load(Relaxed) {
                self.fanout_done.notify_waiters();
            }
        }
    }

    fn record_latency(&self, shard: usize, now_ns: u64, p: &Probe) {
        let us = |from_ns: u64| now_ns.saturating_sub(from_ns) / 1_000;
        let mut shard = self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // `saturating_record` clamps values above the histogram's range instead of failing.
        shard.corrected.saturating_record(us(p.intended_ns).max(1));
        shard.uncorrected.saturating_record(us(p.sent_ns).max(1));
    }

    /// Resolves the next time a measured probe reaches every receiver (create it, `enable` it,
    /// then check [`Recorder::all_delivered`], so no wake-up is lost in between).
    pub fn fanout_progress(&self) -> tokio::sync::futures::Notified<'_> {
        self.fanout_done.notified()
    }

    /// Nanoseconds from probe `(sender, seq)`'s intended send instant to its last first
    /// delivery, once every expected receiver has it; `None` until then (or for a probe outside
    /// the table or the measured window). The benches time single deliveries with it.
    pub fn fanout_ns(&self, sender: u32, seq: u64) -> Option<u64> {
        let slot = self.table.slot(sender, seq)?;
        let receivers = self.receivers.load(Relaxed);
        let intended = slot.intended_ns.load(Relaxed);
        (receivers > 0
            && self.is_measured(intended)
            && u64::from(slot.delivered.load(Relaxed)) >= receivers)
            .then(|| slot.last_delivery_ns.load(Relaxed).saturating_sub(intended))
    }

    /// Measured probes whose POST was accepted, and the receivers still owed one.
    pub fn delivery(&self, counters: &Counters) -> Delivery {
        let receivers = self.receivers.load(Relaxed);
        let mut d = Delivery::default();
        for slot in self.measured_slots() {
            match slot.status.load(Relaxed) {
                s if s == PostStatus::Accepted as u8 => {
                    d.probes_sent += 1;
                    d.expected += receivers;
                    d.delivered += u64::from(slot.delivered.load(Relaxed)).min(receivers);
                }
                s if s == PostStatus::Failed as u8 => d.probes_failed += 1,
                _ => {}
            }
        }
        d.missing = d.expected - d.delivered;
        d.duplicates = counters.duplicates.load(Relaxed);
        d.out_of_order = counters.out_of_order.load(Relaxed);
        d
    }

    /// True when every accepted measured probe reached every receiver.
    pub fn all_delivered(&self) -> bool {
        let receivers = self.receivers.load(Relaxed);
        self.measured_slots().all(|s| {
            s.status.load(Relaxed) != PostStatus::Accepted as u8
                || u64::from(s.delivered.load(Relaxed)) >= receivers
        })
    }

    fn measured_slots(&self) -> impl Iterator<Item = &ProbeSlot> {
        self.table.slots().filter(|s| {
            s.status.load(Relaxed) != PostStatus::NotSent as u8
                && self.is_measured(s.intended_ns.load(Relaxed))
        })
    }

    /// Merged corrected and uncorrected histograms, and per-probe fan-out completion times.
    pub fn histograms(&self) -> Histograms {
        let mut corrected = new_latency_histogram();
        let mut uncorrected = new_latency_histogram();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            // Same bounds everywhere, so `add` cannot fail.
            corrected
                .add(&shard.corrected)
                .expect("shards share bounds");
            uncorrected
                .add(&shard.uncorrected)
                .expect("shards share bounds");
        }
        let mut fanout = new_latency_histogram();
        let receivers = self.receivers.load(Relaxed);
        for slot in self.measured_slots() {
            if receivers > 0 && u64::from(slot.delivered.load(Relaxed)) >= receivers {
                let ns = slot
                    .last_delivery_ns
                    .load(Relaxed)
                    .saturating_sub(slot.intended_ns.load(Relaxed));
                fanout.saturating_record((ns / 1_000).max(1));
            }
        }
        Histograms {
            corrected,
            uncorrected,
            fanout,
        }
    }
}

pub struct Histograms {
    pub corrected: Histogram<u64>,
    pub uncorrected: Histogram<u64>,
    pub fanout: Histogram<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn probe(run_id: u32, sender: u32, seq: u64, intended_ns: u64) -> Probe {
        Probe {
            run_id,
            sender,
            seq,
            intended_ns,
            sent_ns: intended_ns,
        }
    }

    #[test]
    fn a_cursor_tells_new_duplicate_and_out_of_order() {
        let mut c = SenderCursor::default();
        assert_eq!(c.observe(0), Seen::New);
        assert_eq!(c.observe(2), Seen::New);
        assert_eq!(c.observe(1), Seen::NewOutOfOrder);
        assert_eq!(c.observe(1), Seen::Duplicate);
        assert_eq!(c.observe(2), Seen::Duplicate);
        assert_eq!(c.next, 3);
        assert!(c.ahead.is_empty());
        assert_eq!(c.observe(3), Seen::New);
    }

    #[test]
    fn counts_expected_delivered_missing_and_fanout() {
        let epoch = Instant::now();
        let rec = Recorder::new(epoch, 7, 2, 4);
        let counters = Counters::default();
        rec.set_window(epoch, epoch + Duration::from_secs(10), 2);
        let mut logs = [rec.new_receiver_log(0), rec.new_receiver_log(1)];
        for seq in 0..2 {
            rec.probe_intended(0, seq, 1_000_000);
            rec.probe_posted(0, seq, PostStatus::Accepted);
        }
        let at = epoch + Duration::from_millis(5);
        rec.deliver(&mut logs[0], &probe(7, 0, 0, 1_000_000), at, &counters);
        rec.deliver(&mut logs[1], &probe(7, 0, 0, 1_000_000), at, &counters);
        rec.deliver(&mut logs[1], &probe(7, 0, 0, 1_000_000), at, &counters);
        rec.deliver(&mut logs[0], &probe(7, 0, 1, 1_000_000), at, &counters);
        rec.deliver(&mut logs[0], &probe(8, 0, 3, 1_000_000), at, &counters);
        let d = rec.delivery(&counters);
        assert_eq!((d.probes_sent, d.expected, d.delivered), (2, 4, 3));
        assert_eq!((d.missing, d.duplicates), (1, 1));
        assert!(!rec.all_delivered());
        let h = rec.histograms();
        assert_eq!(h.corrected.len(), 3);
        assert_eq!(h.fanout.len(), 1);
        // 5 ms after the epoch, intended at 1 ms: 4 ms.
        assert!((3_990..=4_010).contains(&h.corrected.max()));
    }

    #[test]
    fn warmup_probes_are_delivered_but_not_recorded() {
        let epoch = Instant::now();
        let rec = Recorder::new(epoch, 1, 1, 2);
        let counters = Counters::default();
        rec.set_window(
            epoch + Duration::from_secs(1),
            epoch + Duration::from_secs(2),
            1,
        );
        let mut log = rec.new_receiver_log(0);
        rec.probe_intended(0, 0, 500_000_000);
        rec.probe_posted(0, 0, PostStatus::Accepted);
        rec.deliver(&mut log, &probe(1, 0, 0, 500_000_000), epoch, &counters);
        assert_eq!(counters.deliveries.load(Relaxed), 1);
        assert_eq!(rec.histograms().corrected.len(), 0);
        assert_eq!(rec.delivery(&counters).expected, 0);
    }
}
