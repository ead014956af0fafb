//! The server restarts in the middle of a run (an in-memory chat server: its history is gone and
//! its ids start again at 1). The run goes on: sends in the outage fail and are lost messages,
//! receivers reconnect, notice that their cursor is ahead of the new log and read it from its
//! start, and the result shows the outage.

mod support;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use loadgen::results::{Outcome, RunResult, Warning};
use support::{run, small_scenario};

const CLIENTS: u64 = 10;
/// Long enough that at least one health check (every 500 ms) finds the server gone, short of
/// the 2 s after which a run declares its target dead.
const DOWN_FOR: Duration = Duration::from_millis(900);

async fn start_at(addr: SocketAddr) -> chat_server::RunningServer {
    let config = chat_server::Config {
        addr,
        ..chat_server::Config::default()
    };
    // The old listener's port is free once it closed; allow a moment for that.
    for _ in 0..50 {
        if let Ok(server) = chat_server::spawn(config.clone()).await {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind {addr} again");
}

/// Runs `spec` for 4 s; 1.5 s in, the server goes down for [`DOWN_FOR`] and comes back empty.
async fn run_across_a_restart(spec: &'static str) -> RunResult {
    let first = support::in_process_server().await;
    let addr = first.addr();
    let mut scenario = small_scenario(Some(format!("http://{addr}")));
    scenario.clients = NonZeroUsize::new(CLIENTS as usize).expect("nonzero");
    scenario.duration = Duration::from_secs(4);
    scenario.drain = Duration::from_secs(3);
    let running = tokio::spawn(async move { run(spec, &scenario).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.shutdown().await.expect("clean shutdown");
    tokio::time::sleep(DOWN_FOR).await;
    let second = start_at(addr).await;
    let r = running.await.expect("the run task");
    second.shutdown().await.expect("clean shutdown");
    r
}

fn assert_outage_shown(r: &RunResult) {
    assert_eq!(
        r.outcome,
        Outcome::Completed,
        "{}: {:?}",
        r.label,
        r.outcome
    );
    let windows = &r.outages.windows;
    assert_eq!(windows.len(), 1, "{}: {windows:?}", r.label);
    let length = windows[0].to_ms - windows[0].from_ms;
    assert!(
        length > 0.0 && length < 2_000.0,
        "{}: outage of {length} ms",
        r.label
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| matches!(w, Warning::TargetOutage { count: 1, .. })),
        "{}: {:?}",
        r.label,
        r.warnings
    );
    let d = &r.delivery;
    // Sends in the outage could not connect: failed, lost, owed to everyone.
    assert!(d.probes_failed > 0, "{}: {d:?}", r.label);
    assert!(
        r.traffic
            .requests
            .errors
            .get("connect")
            .copied()
            .unwrap_or(0)
            >= d.probes_failed,
        "{}: {:?}",
        r.label,
        r.traffic.requests.errors
    );
    assert_eq!(d.expected, d.delivered + d.missing, "{}: {d:?}", r.label);
    assert!(
        d.missing >= d.missing_from_failed_sends,
        "{}: {d:?}",
        r.label
    );
    assert_eq!(d.duplicates, 0, "{}: {d:?}", r.label);
    // Every receiver found its cursor ahead of the restarted log once, and read it anew.
    assert_eq!(
        r.outages.log_restarts_seen, CLIENTS,
        "{}: {:?}",
        r.label, r.outages
    );
}

/// Socket.IO receivers are disconnected by the shutdown, reconnect, and catch up from the new
/// log's start: every probe the new server accepted reaches every receiver, and of what the old
/// server accepted at most the one broadcast in flight at the shutdown is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_receivers_reconnect_and_catch_up_across_a_restart() {
    let r = run_across_a_restart("socketio").await;
    assert_outage_shown(&r);
    let d = &r.delivery;
    assert!(d.delivered_by_catchup > 0, "{d:?}");
    assert!(
        d.missing - d.missing_from_failed_sends <= CLIENTS,
        "lost beyond the failed sends: {d:?}"
    );
}

/// Cursor pollers find `X-Pushpoll-Latest-Id` below their cursor and poll the new log from 0.
/// What the old server accepted after a receiver's last poll before the shutdown is gone with
/// it (at most the probes of one poll interval, 100 ms at 20/s: 2 per receiver) and counted
/// missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pollers_read_the_restarted_log_from_its_start() {
    let r = run_across_a_restart("poll@100ms").await;
    assert_outage_shown(&r);
    let d = &r.delivery;
    assert!(
        d.missing - d.missing_from_failed_sends <= 3 * CLIENTS,
        "lost beyond the failed sends: {d:?}"
    );
}

/// Long pollers are answered at the shutdown, retry, and read the new log from 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_pollers_read_the_restarted_log_from_its_start() {
    let r = run_across_a_restart("longpoll").await;
    assert_outage_shown(&r);
    let d = &r.delivery;
    assert!(
        d.missing - d.missing_from_failed_sends <= CLIENTS,
        "lost beyond the failed sends: {d:?}"
    );
}

/// SSE receivers reconnect with `Last-Event-ID` above the new log's ids, get `event: reset`,
/// and read the new log from its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_receivers_read_the_restarted_log_from_its_start() {
    let r = run_across_a_restart("sse").await;
    assert_outage_shown(&r);
    let d = &r.delivery;
    assert!(
        d.missing - d.missing_from_failed_sends <= CLIENTS,
        "lost beyond the failed sends: {d:?}"
    );
}
