//! `loadgen capacity` against a server whose capacity is known: every Socket.IO message waits
//! 20 ms per connected socket before it is sent (`support::faulty`'s `delay_per_socket`). With N
//! sockets a batch waits 20·N ms, and a message that arrives during a wait waits for the rest of
//! it and then its own: the latency runs up to 2·20·N ms, so at a p99 target of 800 ms the
//! server holds about 20 clients. The search must find that, say why the next count broke, and
//! leave a run folder per step. (Tens of milliseconds per socket, so that the generator's own
//! lag, judged against a tenth of the latency, stays out of the verdict even on a machine busy
//! with other builds: 5 ms per socket once broke at 8 clients on a 10 ms send lag.)

mod support;

use std::num::NonZeroUsize;
use std::time::Duration;

use loadgen::capacity::{Broke, Search, run_search};
use loadgen::scenario::Scenario;
use support::faulty::{Faults, FaultyServer};
use support::small_scenario;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_finds_a_known_capacity() {
    let server = FaultyServer::start(Faults {
        delay_per_socket: Some(Duration::from_millis(20)),
        ..Faults::default()
    })
    .await;
    let scenario = Scenario {
        senders: NonZeroUsize::new(1).expect("nonzero"),
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(300),
        drain: Duration::from_secs(2),
        ..small_scenario(Some(server.url()))
    };
    let search = Search {
        strategy: "socketio".parse().expect("spec"),
        p99: Duration::from_millis(800),
        start: 8,
        max: 256,
        resolution: 0.1,
    };
    let out = tempfile::tempdir().expect("temp dir");
    let c = run_search(
        &search,
        &scenario,
        out.path(),
        CancellationToken::new(),
        None,
    )
    .await
    .expect("the search runs");
    let counts: Vec<usize> = c.steps.iter().map(|s| s.clients).collect();
    let held = c
        .largest_held
        .unwrap_or_else(|| panic!("nothing held: {counts:?}"));
    let broke = c.broke_at.expect("a count broke");
    // Up to 40 ms per socket plus a few ms of delivery: the boundary lies in 16..=24.
    assert!((16..=24).contains(&held), "held {held}, steps {counts:?}");
    assert!(
        broke > held && broke <= 26,
        "broke at {broke}, steps {counts:?}"
    );
    assert!(
        matches!(c.broke_because, Some(Broke::P99 { .. })),
        "{:?}",
        c.broke_because
    );
    assert_eq!(&counts[..3], &[8, 16, 32], "doubling first: {counts:?}");
    assert!(!c.reached_max && !c.interrupted);
    for step in &c.steps {
        let folder = out.path().join(&step.folder);
        assert!(folder.join("results.json").is_file(), "{}", step.folder);
        assert!(folder.join("summary.md").is_file(), "{}", step.folder);
    }
    let json = std::fs::read_to_string(out.path().join("capacity.json")).expect("capacity.json");
    let back: loadgen::capacity::Capacity = serde_json::from_str(&json).expect("parses");
    assert_eq!(back.largest_held, Some(held));
    let md = std::fs::read_to_string(out.path().join("capacity.md")).expect("capacity.md");
    assert!(md.contains(&format!("capacity {held} clients")), "{md}");
}
