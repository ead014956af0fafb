//! What each receiver was owed, for the per-node figures of a run on several nodes
//! ([`crate::nodes`]).

use std::sync::atomic::Ordering::Relaxed;

use super::{PostStatus, Recorder, lock};

impl Recorder {
    /// Measured probes owed to each member (by its index in the membership spans): every
    /// measured probe whose POST left (accepted, failed or unanswered) while it was a member,
    /// as [`Recorder::delivery`] counts them in `expected`.
    pub fn owed_by_member(&self) -> Vec<u64> {
        let mut sent: Vec<u64> = self
            .measured_slots()
            .filter(|s| s.status() != PostStatus::NotSent)
            .map(|s| s.sent_ns.load(Relaxed))
            .collect();
        sent.sort_unstable();
        let before = |ns: u64| sent.partition_point(|&s| s < ns) as u64;
        lock(&self.spans)
            .iter()
            .map(|span| {
                let left = span.left_ns.map_or(sent.len() as u64, before);
                left.saturating_sub(before(span.joined_ns))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::{Duration, Instant};

    use super::super::{PostStatus, Recorder, Via};
    use crate::counters::Counters;
    use pushpoll_wire::probe::Probe;

    /// Two members, one joined after the first probe left: owed 2 and 1; one delivery
    /// returns its latency, a duplicate none.
    #[test]
    fn members_are_owed_what_was_sent_while_they_were_members() {
        let epoch = Instant::now();
        let rec = Recorder::new(epoch, 7, 1, 4);
        rec.set_window(epoch, epoch + Duration::from_secs(3600));
        let counters = Counters::default();
        let mut a = rec.new_receiver_log(0);
        rec.join(&mut a);
        let t0 = rec.begin_send(0, 0, epoch);
        rec.end_send(0, 0, PostStatus::Accepted, Instant::now());
        let mut b = rec.new_receiver_log(1);
        rec.join(&mut b);
        let t1 = rec.begin_send(0, 1, epoch);
        rec.end_send(0, 1, PostStatus::Accepted, Instant::now());
        assert_eq!(rec.owed_by_member(), vec![2, 1]);
        let probe = Probe {
            run_id: 7,
            sender: 0,
            seq: 1,
            intended_ns: t1.intended_ns,
            sent_ns: t1.sent_ns,
        };
        let now = Instant::now();
        assert!(
            rec.deliver(&mut b, &probe, now, &counters, Via::Live)
                .is_some()
        );
        assert_eq!(rec.deliver(&mut b, &probe, now, &counters, Via::Live), None);
        let _ = t0;
    }
}
