//! Safe against real servers (issue 15): a `--target` run planning more requests per second than
//! `--max-request-rate` never starts (not one request reaches the target), and a target that
//! answers `429` stops the run at once with the reason as its outcome.

mod support;

use std::num::NonZeroUsize;
use std::sync::atomic::Ordering::Relaxed;

use loadgen::driver::{RunError, run_strategy};
use loadgen::results::Outcome;
use loadgen::scenario::StrategySpec;
use support::faulty::{Faults, FaultyServer};
use support::gate::Gate;
use support::{hooks, run, small_scenario};

#[tokio::test]
async fn a_run_above_the_request_ceiling_never_reaches_the_target() {
    let gate = Gate::default();
    let server = FaultyServer::start(Faults {
        gate: gate.clone(),
        ..Faults::default()
    })
    .await;
    let mut scenario = small_scenario(Some(server.url()));
    scenario.clients = NonZeroUsize::new(500).expect("nonzero");
    // The default ceiling guards targets allowed off loopback (this one is still on it).
    scenario.allow_remote = true;
    let spec: StrategySpec = "poll@100ms".parse().expect("spec");
    let err = run_strategy(&scenario, &spec, &hooks())
        .await
        .expect_err("5,020 requests/s is above the default ceiling");
    assert!(matches!(err, RunError::Safety(_)), "{err}");
    assert!(err.to_string().contains("--max-request-rate"), "{err}");
    assert_eq!(gate.log.requests.load(Relaxed), 0, "nothing was sent");
}

#[tokio::test]
async fn a_ramp_above_its_ceiling_never_reaches_the_target() {
    let gate = Gate::default();
    let server = FaultyServer::start(Faults {
        gate: gate.clone(),
        ..Faults::default()
    })
    .await;
    let mut scenario = small_scenario(Some(server.url()));
    // Allowed off loopback, so the default ramp ceiling (200/s) holds: 1,000/s is refused.
    scenario.allow_remote = true;
    let err = run_strategy(&scenario, &"socketio".parse().expect("spec"), &hooks())
        .await
        .expect_err("a 1,000/s ramp is above the default ceiling");
    assert!(matches!(err, RunError::Safety(_)), "{err}");
    assert!(err.to_string().contains("--max-connect-rate"), "{err}");
    assert_eq!(gate.log.requests.load(Relaxed), 0, "nothing was sent");
    scenario.connect_rate = 200.0;
    let r = run("socketio", &scenario).await;
    assert_eq!(r.outcome, Outcome::Completed, "{:?}", r.outcome);
}

#[tokio::test]
async fn a_target_answering_429_stops_the_run_with_the_reason() {
    let gate = Gate {
        too_many_after: Some(60),
        ..Gate::default()
    };
    let server = FaultyServer::start(Faults {
        gate: gate.clone(),
        ..Faults::default()
    })
    .await;
    let mut scenario = small_scenario(Some(server.url()));
    scenario.duration = std::time::Duration::from_secs(30);
    let r = run("poll@100ms", &scenario).await;
    let Outcome::Failed { detail } = &r.outcome else {
        panic!("expected a failed run, got {:?}", r.outcome);
    };
    assert!(
        detail.contains("429") && detail.contains("--abort-on-errors 5 %"),
        "{detail}"
    );
    assert!(gate.log.too_many.load(Relaxed) >= 10);
    // Stopped at once: far fewer polls than the 30 s the scenario planned (20 clients x 10/s).
    assert!(
        r.traffic.requests.receiver_requests < 20 * 10 * 30 / 2,
        "{}",
        r.traffic.requests.receiver_requests
    );
}
