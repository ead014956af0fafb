use super::*;
use std::time::Duration;

fn probe(run_id: u32, sender: u32, seq: u64, t: &SendTicket) -> Probe {
    Probe {
        run_id,
        sender,
        seq,
        intended_ns: t.intended_ns,
        sent_ns: t.sent_ns,
    }
}

/// A recorder measuring everything from its epoch on, with `receivers` joined members.
fn recorder(
    run_id: u32,
    senders: usize,
    per_sender: usize,
    receivers: usize,
) -> (Recorder, Vec<ReceiverLog>) {
    let epoch = Instant::now();
    let rec = Recorder::new(epoch, run_id, senders, per_sender);
    rec.set_window(epoch, epoch + Duration::from_secs(3600));
    let logs = (0..receivers)
        .map(|i| {
            let mut log = rec.new_receiver_log(i);
            rec.join(&mut log);
            log
        })
        .collect();
    (rec, logs)
}

#[test]
fn counts_expected_delivered_missing_and_fanout() {
    let (rec, mut logs) = recorder(7, 2, 4, 2);
    let counters = Counters::default();
    let tickets: Vec<SendTicket> = (0..2)
        .map(|seq| {
            let t = rec.begin_send(0, seq, Instant::now());
            rec.end_send(0, seq, PostStatus::Accepted, Instant::now());
            t
        })
        .collect();
    let at = Instant::now() + Duration::from_millis(5);
    let live = Via::Live;
    rec.deliver(
        &mut logs[0],
        &probe(7, 0, 0, &tickets[0]),
        at,
        &counters,
        live,
    );
    rec.deliver(
        &mut logs[1],
        &probe(7, 0, 0, &tickets[0]),
        at,
        &counters,
        live,
    );
    rec.deliver(
        &mut logs[1],
        &probe(7, 0, 0, &tickets[0]),
        at,
        &counters,
        live,
    );
    rec.deliver(
        &mut logs[0],
        &probe(7, 0, 1, &tickets[1]),
        at,
        &counters,
        live,
    );
    rec.deliver(
        &mut logs[0],
        &probe(8, 0, 3, &tickets[1]),
        at,
        &counters,
        live,
    );
    let d = rec.delivery(&counters);
    assert_eq!((d.probes_sent, d.expected, d.delivered), (2, 4, 3));
    assert_eq!((d.missing, d.duplicates), (1, 1));
    assert!(!rec.all_settled());
    let h = rec.histograms();
    assert_eq!(h.corrected.len(), 3);
    assert_eq!(h.fanout.len(), 1);
    assert_eq!(h.censored, 0);
}

#[test]
fn a_failed_send_is_loss_owed_to_every_member() {
    let (rec, mut logs) = recorder(1, 1, 4, 3);
    let counters = Counters::default();
    let ok = rec.begin_send(0, 0, Instant::now());
    rec.end_send(0, 0, PostStatus::Accepted, Instant::now());
    rec.begin_send(0, 1, Instant::now());
    rec.end_send(0, 1, PostStatus::Failed, Instant::now());
    for log in &mut logs {
        rec.deliver(
            log,
            &probe(1, 0, 0, &ok),
            Instant::now(),
            &counters,
            Via::Live,
        );
    }
    assert!(rec.all_settled(), "a failed probe is settled");
    let d = rec.delivery(&counters);
    assert_eq!((d.probes_sent, d.probes_failed), (1, 1));
    assert_eq!((d.expected, d.delivered, d.missing), (6, 3, 3));
    assert_eq!(d.missing_from_failed_sends, 3);
}

#[test]
fn missing_pairs_enter_the_tail_censored_at_the_close() {
    let (rec, mut logs) = recorder(1, 1, 2, 4);
    let counters = Counters::default();
    let start = Instant::now();
    let t = rec.begin_send(0, 0, start);
    rec.end_send(0, 0, PostStatus::Accepted, start);
    // One receiver of four gets it 1 ms after its intended instant; three never do.
    let at = start + Duration::from_millis(1);
    rec.deliver(&mut logs[0], &probe(1, 0, 0, &t), at, &counters, Via::Live);
    // A second probe is still in flight when the run closes: unanswered, owed to all four.
    rec.begin_send(0, 1, start);
    let close = start + Duration::from_secs(2);
    assert_eq!(rec.close(close), 1);
    let h = rec.histograms();
    assert_eq!(h.corrected.len(), 8, "1 delivered + 3 + 4 censored");
    assert_eq!(h.censored, 7);
    let from = h.censored_from_us.expect("censored");
    assert!((1_999_000..=2_000_100).contains(&from), "{from}");
    // p50 is a censored value: the tail can only have grown.
    assert!(h.corrected.value_at_quantile(0.5) >= from - from / 500);
    assert_eq!(h.fanout.len(), 2, "both unfinished fan-outs are censored");
    let d = rec.delivery(&counters);
    assert_eq!((d.probes_sent, d.probes_unanswered, d.missing), (1, 1, 7));
    assert_eq!(d.missing_from_failed_sends, 4);
    assert_eq!(h.by_probe.pairs(), 8);
    assert_eq!(h.by_probe.probes(), 2);
}

#[test]
fn a_receiver_is_owed_only_what_was_sent_after_it_joined() {
    let (rec, mut logs) = recorder(1, 1, 4, 1);
    let counters = Counters::default();
    let early = rec.begin_send(0, 0, Instant::now());
    rec.end_send(0, 0, PostStatus::Accepted, Instant::now());
    let mut late = rec.new_receiver_log(1);
    rec.join(&mut late);
    let after = rec.begin_send(0, 1, Instant::now());
    rec.end_send(0, 1, PostStatus::Accepted, Instant::now());
    let now = Instant::now();
    for t in [&early, &after] {
        let seq = u64::from(t.sent_ns != early.sent_ns);
        rec.deliver(
            &mut logs[0],
            &probe(1, 0, seq, t),
            now,
            &counters,
            Via::Live,
        );
        rec.deliver(
            &mut late,
            &probe(1, 0, seq, t),
            now,
            &counters,
            Via::Catchup,
        );
    }
    let d = rec.delivery(&counters);
    assert_eq!((d.expected, d.delivered, d.missing), (3, 3, 0));
    assert_eq!(
        d.extra_deliveries, 1,
        "the late joiner's copy of the early probe"
    );
    assert_eq!(d.delivered_by_catchup, 1);
    // A member that gave up is not owed what is sent afterwards.
    rec.leave(&mut late);
    rec.begin_send(0, 2, Instant::now());
    rec.end_send(0, 2, PostStatus::Failed, Instant::now());
    assert_eq!(rec.delivery(&counters).missing_from_failed_sends, 1);
}

#[test]
fn warmup_probes_are_delivered_but_not_recorded() {
    let epoch = Instant::now();
    let rec = Recorder::new(epoch, 1, 1, 2);
    let counters = Counters::default();
    rec.set_window(
        epoch + Duration::from_secs(1),
        epoch + Duration::from_secs(2),
    );
    let mut log = rec.new_receiver_log(0);
    rec.join(&mut log);
    let t = rec.begin_send(0, 0, epoch + Duration::from_millis(500));
    rec.end_send(0, 0, PostStatus::Accepted, Instant::now());
    rec.deliver(&mut log, &probe(1, 0, 0, &t), epoch, &counters, Via::Live);
    rec.deliver(&mut log, &probe(1, 0, 0, &t), epoch, &counters, Via::Live);
    assert_eq!(counters.deliveries.load(Relaxed), 1);
    assert_eq!(
        counters.duplicates.load(Relaxed),
        0,
        "only measured probes count"
    );
    assert_eq!(rec.histograms().corrected.len(), 0);
    assert_eq!(rec.delivery(&counters).expected, 0);
    assert_eq!(rec.histograms().send_lag.len(), 0);
}

#[test]
fn send_lag_and_late_sends_are_measured_from_the_intended_instant() {
    let (rec, _) = recorder(1, 1, 4, 0);
    let now = Instant::now();
    rec.begin_send(0, 0, now);
    rec.begin_send(0, 1, now - Duration::from_millis(30));
    assert_eq!(rec.late_sends(), 1);
    let lag = rec.histograms().send_lag;
    assert_eq!(lag.len(), 2);
    assert!(lag.max() >= 30_000, "{}", lag.max());
}

#[test]
fn a_poll_that_misses_an_accepted_probe_is_stale_once() {
    let (rec, mut logs) = recorder(1, 1, 4, 1);
    let counters = Counters::default();
    let t0 = rec.begin_send(0, 0, Instant::now());
    rec.end_send(0, 0, PostStatus::Accepted, Instant::now());
    let t1 = rec.begin_send(0, 1, Instant::now());
    // A poll sent while probe 1 is still in flight is not stale for leaving it out.
    let early_poll = Instant::now();
    rec.end_send(0, 1, PostStatus::Accepted, Instant::now());
    rec.deliver(
        &mut logs[0],
        &probe(1, 0, 0, &t0),
        Instant::now(),
        &counters,
        Via::Live,
    );
    assert!(!rec.check_stale(&mut logs[0], early_poll));
    // A poll sent after probe 1's 201 that does not carry it is stale.
    let poll = Instant::now() + Duration::from_millis(1);
    assert!(rec.check_stale(&mut logs[0], poll));
    rec.deliver(
        &mut logs[0],
        &probe(1, 0, 1, &t1),
        poll,
        &counters,
        Via::Live,
    );
    assert!(!rec.check_stale(&mut logs[0], poll));
    assert_eq!(rec.stale_answers(), 1);
    // A failed probe is never owed by a poll.
    rec.begin_send(0, 2, Instant::now());
    rec.end_send(0, 2, PostStatus::Failed, Instant::now());
    assert!(!rec.check_stale(&mut logs[0], Instant::now() + Duration::from_millis(2)));
}

#[test]
fn a_catch_up_counts_only_what_never_came_live_and_is_no_duplicate() {
    let (rec, mut logs) = recorder(1, 1, 4, 1);
    let counters = Counters::default();
    let t: Vec<SendTicket> = (0..3)
        .map(|seq| {
            let t = rec.begin_send(0, seq, Instant::now());
            rec.end_send(0, seq, PostStatus::Accepted, Instant::now());
            t
        })
        .collect();
    let now = Instant::now();
    let log = &mut logs[0];
    rec.deliver(log, &probe(1, 0, 0, &t[0]), now, &counters, Via::Live);
    // Reconnected: the catch-up fetches 0 (had it), 1 and 2; then 2 also arrives live.
    for (seq, ticket) in t.iter().enumerate() {
        rec.deliver(
            log,
            &probe(1, 0, seq as u64, ticket),
            now,
            &counters,
            Via::Catchup,
        );
    }
    rec.deliver(log, &probe(1, 0, 2, &t[2]), now, &counters, Via::Live);
    let d = rec.delivery(&counters);
    assert_eq!((d.delivered, d.missing, d.duplicates), (3, 0, 0));
    assert_eq!(
        d.delivered_by_catchup, 1,
        "only probe 1 came by the catch-up alone"
    );
    // A second live copy is a real duplicate.
    rec.deliver(log, &probe(1, 0, 2, &t[2]), now, &counters, Via::Live);
    assert_eq!(rec.delivery(&counters).duplicates, 1);
}
