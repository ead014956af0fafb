//! The recorder as one shard of a run split over several processes (`loadgen run --shard I/N`).
//!
//! In one process a probe is owed to the members at the instant its POST left, decided under
//! one lock. Across processes no lock is shared, so each shard writes down what the merge needs
//! to decide it afterwards, exactly, from numbers every shard measured on the same time axis
//! (ns since the run's shared start instant, see [`crate::shard::clock`]):
//! - [`SentProbe`]: every probe its senders posted, when, and what became of the POST;
//! - [`MemberSpan`]: every receiver's membership (joined, left);
//! - [`ProbeDeliveries`]: per probe, how many of its receivers that owed it (joined at or before
//!   the probe's send instant, the same comparison the merge makes) got it, and the last time.
//!
//! A sharded recorder does not censor missing pairs at its close (it cannot know what other
//! shards sent and it never got): the merge does, per shard, at that shard's close instant,
//! which is why deliveries after the close are ignored.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PostStatus, Recorder, lock};
use crate::results::EncodedHistogram;

/// One receiver's membership, ns since the run's start instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpan {
    pub joined_ns: u64,
    /// When it gave up (or stopped at the end of the run); `None` while still a member.
    pub left_ns: Option<u64>,
}

impl MemberSpan {
    /// Was it owed a probe whose POST left at `sent_ns`?
    pub fn owes(&self, sent_ns: u64) -> bool {
        self.joined_ns <= sent_ns && self.left_ns.is_none_or(|l| l > sent_ns)
    }
}

/// A probe this shard's senders posted (measured or not: the merge applies the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentProbe {
    pub sender: u32,
    pub seq: u64,
    pub intended_ns: u64,
    pub sent_ns: u64,
    pub status: SentStatus,
}

/// What became of a probe's POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentStatus {
    Accepted,
    Failed,
    /// Still unanswered when the shard closed: a lost message, like a failed one.
    Unanswered,
}

/// Owed first deliveries of one measured probe to this shard's receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeDeliveries {
    pub sender: u32,
    pub seq: u64,
    pub delivered: u32,
    /// The last of them, ns since the start instant.
    pub last_ns: u64,
}

/// Everything one shard's recorder hands to the merge.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShardTallies {
    /// The measured window of intended send instants, ns since the start instant.
    pub window_from_ns: u64,
    pub window_to_ns: u64,
    /// Where this shard's missing pairs are censored.
    pub closed_ns: u64,
    pub members: Vec<MemberSpan>,
    pub sent: Vec<SentProbe>,
    pub deliveries: Vec<ProbeDeliveries>,
    /// The generator's own timing (HdrHistogram V2, base64), added exactly by the merge. (The
    /// latency histograms are in the shard's `results.json`.)
    pub send_lag: EncodedHistogram,
    pub poll_answer: EncodedHistogram,
    pub poll_lag: EncodedHistogram,
}

impl Recorder {
    /// Makes this recorder one shard of a sharded run: `offsets` is every sender's schedule (of
    /// every shard) from `origin_ns`, so the drain can wait for other shards' probes too.
    pub fn into_sharded(mut self, offsets: &[Arc<[Duration]>], origin_ns: u64) -> Self {
        self.sharded = true;
        for (row, offsets) in self.table.rows.iter().zip(offsets) {
            for (seq, slot) in row.iter().enumerate() {
                // Slots past a sender's schedule (rows are as long as the longest) are never
                // measured: the drain must not wait for them.
                let ns = offsets.get(seq).map_or(u64::MAX, |o| {
                    origin_ns.saturating_add(u64::try_from(o.as_nanos()).unwrap_or(u64::MAX))
                });
                slot.intended_ns.store(ns, Relaxed);
            }
        }
        self
    }

    /// The latest join instant so far (ns since the epoch; 0 with no member).
    #[cfg(test)]
    fn members_joined_last(&self) -> u64 {
        lock(&self.spans)
            .iter()
            .map(|s| s.joined_ns)
            .max()
            .unwrap_or(0)
    }

    /// The sharded drain's test: every measured probe of the whole schedule (whichever shard
    /// sends it) failed here or reached as many of this shard's receivers as are members now.
    /// A probe another shard failed to send is never seen here: the drain then waits its limit.
    pub(super) fn all_settled_sharded(&self) -> bool {
        let members = self.member_count.load(Relaxed);
        self.table.slots().all(|s| {
            !self.is_measured(s.intended_ns.load(Relaxed))
                || s.status() == PostStatus::Failed
                || u64::from(s.delivered.load(Relaxed)) >= members
        })
    }

    /// What the merge needs from this shard (call after [`Recorder::close`]).
    pub fn shard_tallies(&self) -> ShardTallies {
        let mut sent = Vec::new();
        let mut deliveries = Vec::new();
        for (sender, row) in (0u32..).zip(&self.table.rows) {
            for (seq, slot) in (0u64..).zip(row.iter()) {
                let status = match slot.status() {
                    PostStatus::NotSent => None,
                    PostStatus::InFlight => Some(SentStatus::Unanswered),
                    PostStatus::Accepted => Some(SentStatus::Accepted),
                    PostStatus::Failed => Some(SentStatus::Failed),
                };
                if let Some(status) = status {
                    sent.push(SentProbe {
                        sender,
                        seq,
                        intended_ns: slot.intended_ns.load(Relaxed),
                        sent_ns: slot.sent_ns.load(Relaxed),
                        status,
                    });
                }
                let delivered = slot.delivered.load(Relaxed);
                if delivered > 0 {
                    deliveries.push(ProbeDeliveries {
                        sender,
                        seq,
                        delivered,
                        last_ns: slot.last_delivery_ns.load(Relaxed),
                    });
                }
            }
        }
        let h = self.histograms();
        // Encoding into memory fails only on I/O: an empty histogram then, never a panic.
        let encode = |h| EncodedHistogram::encode(h).unwrap_or_default();
        ShardTallies {
            send_lag: encode(&h.send_lag),
            poll_answer: encode(&h.poll_answer),
            poll_lag: encode(&h.poll_lag),
            window_from_ns: self.window.from_ns.load(Relaxed),
            window_to_ns: self.window.to_ns.load(Relaxed),
            closed_ns: self.closed_ns.load(Relaxed),
            members: lock(&self.spans).clone(),
            sent,
            deliveries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counters;
    use crate::recorder::Via;
    use pushpoll_wire::probe::Probe;
    use tokio::time::Instant;

    /// Another shard's probe is measured here (latency, per-probe count for receivers that
    /// owed it), nothing is censored at the close, and a delivery after the close is ignored.
    #[test]
    fn a_shard_counts_other_shards_probes_and_leaves_censoring_to_the_merge() {
        let epoch = Instant::now();
        let offsets: Vec<Arc<[Duration]>> = vec![
            vec![Duration::ZERO, Duration::from_millis(1)].into(),
            vec![Duration::ZERO].into(),
        ];
        let rec = Recorder::new(epoch, 9, 2, 2).into_sharded(&offsets, 0);
        rec.set_window(epoch, epoch + Duration::from_secs(3600));
        let mut log = rec.new_receiver_log(0);
        rec.join(&mut log);
        let counters = Counters::default();
        // Sender 1 runs in another shard: its probe 0 arrives, sent 10 µs after the join.
        let sent_ns = rec.members_joined_last() + 10_000;
        let foreign = Probe {
            run_id: 9,
            sender: 1,
            seq: 0,
            intended_ns: 0,
            sent_ns,
        };
        assert!(!rec.all_settled(), "three scheduled probes, none delivered");
        rec.deliver(&mut log, &foreign, Instant::now(), &counters, Via::Live);
        assert!(!rec.all_settled(), "sender 0's two probes are still due");
        let own = Probe {
            sender: 0,
            ..foreign
        };
        rec.deliver(&mut log, &own, Instant::now(), &counters, Via::Live);
        assert!(!rec.all_settled(), "sender 0's second probe is still due");
        let close = Instant::now() + Duration::from_millis(5);
        rec.close(close);
        // After the close: ignored (the merge censors it at the close instead).
        let late = Probe { seq: 1, ..own };
        rec.deliver(&mut log, &late, close, &counters, Via::Live);
        assert!(
            !rec.all_settled(),
            "a delivery after the close does not count"
        );
        let t = rec.shard_tallies();
        assert_eq!(t.members.len(), 1);
        assert!(t.members[0].owes(sent_ns));
        assert!(t.sent.is_empty(), "this shard sent nothing");
        let counted: Vec<(u32, u64, u32)> = t
            .deliveries
            .iter()
            .map(|d| (d.sender, d.seq, d.delivered))
            .collect();
        assert_eq!(counted, vec![(0, 0, 1), (1, 0, 1)]);
        let h = rec.histograms();
        assert_eq!(
            h.corrected.len(),
            2,
            "the deliveries only: no censoring here"
        );
        assert_eq!(h.censored, 0);
        rec.leave(&mut log);
        let t = rec.shard_tallies();
        assert!(
            t.members[0]
                .left_ns
                .is_some_and(|l| l >= t.members[0].joined_ns)
        );
    }

    /// The sharded drain ends once every scheduled probe reached this shard's members, even
    /// when senders' schedules differ in length (the table's rows do not).
    #[test]
    fn the_sharded_drain_waits_for_every_scheduled_probe_and_no_more() {
        let epoch = Instant::now();
        let offsets: Vec<Arc<[Duration]>> = vec![
            vec![Duration::ZERO, Duration::from_millis(1)].into(),
            vec![Duration::ZERO].into(),
        ];
        let rec = Recorder::new(epoch, 9, 2, 2).into_sharded(&offsets, 0);
        rec.set_window(epoch, epoch + Duration::from_secs(3600));
        let mut log = rec.new_receiver_log(0);
        rec.join(&mut log);
        let counters = Counters::default();
        for (sender, seq) in [(0, 0), (1, 0), (0, 1)] {
            assert!(!rec.all_settled(), "({sender}, {seq}) is still due");
            let p = Probe {
                run_id: 9,
                sender,
                seq,
                intended_ns: offsets[sender as usize][seq as usize].as_nanos() as u64,
                // Sent after the join: owed.
                sent_ns: u64::MAX / 2,
            };
            rec.deliver(&mut log, &p, Instant::now(), &counters, Via::Live);
        }
        assert!(rec.all_settled());
    }

    #[test]
    fn a_member_is_owed_what_was_sent_between_its_join_and_its_leave() {
        let span = MemberSpan {
            joined_ns: 10,
            left_ns: Some(20),
        };
        assert!(!span.owes(9));
        assert!(span.owes(10));
        assert!(span.owes(19));
        assert!(!span.owes(20));
        let staying = MemberSpan {
            left_ns: None,
            ..span
        };
        assert!(staying.owes(u64::MAX));
    }
}
