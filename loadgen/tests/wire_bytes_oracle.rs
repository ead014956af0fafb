//! An independent check of the bytes loadgen reports: every strategy runs against the project's
//! chat server through a TCP proxy that counts what passes each way with its own plain
//! read/write loop (`support::proxy`), and the counts must agree to the byte.

mod support;

use std::time::Duration;

use loadgen::results::{Outcome, RunResult};
use support::proxy::{CountingProxy, ProxyCounts};
use support::{in_process_server, run, small_scenario};

/// The generator's own connections, which `traffic.connections_opened` leaves out: the
/// capability check, the watchdog's /metrics connection, and one /metrics scrape at each edge of
/// the measured window (the server is in this process, so its usage is read from /metrics).
const CONTROL_CONNECTIONS: u64 = 4;

async fn bytes_match_the_proxy(spec: &str) {
    let server = in_process_server().await;
    let proxy = CountingProxy::start(server.addr()).await;
    let scenario = small_scenario(Some(format!("http://{}", proxy.addr())));
    let r = run(spec, &scenario).await;
    // Everything loadgen opened is closed by now or closing; wait (bounded) for the proxy to see
    // every connection end, so its counts are final.
    let p = proxy.settle(Duration::from_secs(10)).await;
    check(
        spec,
        &r,
        &p,
        scenario.clients.get() + scenario.senders.get(),
    );
    server.shutdown().await.expect("clean shutdown");
}

fn check(spec: &str, r: &RunResult, p: &ProxyCounts, clients_and_senders: usize) {
    let t = &r.traffic;
    let ctx = format!("{spec}: proxy {p:?}, loadgen {t:?}");
    assert_eq!(r.outcome, Outcome::Completed, "{ctx}");
    assert_eq!(r.delivery.missing, 0, "{ctx}");
    assert_eq!(p.open, 0, "every proxied connection ended: {ctx}");
    assert_eq!(p.upstream_failures, 0, "{ctx}");
    assert!(t.bytes_up > 0 && t.bytes_down > 0, "{ctx}");
    assert!(
        t.requests.control_bytes_up > 0 && t.requests.control_bytes_down > 0,
        "{ctx}"
    );
    assert_eq!(
        p.up,
        t.bytes_up + t.requests.control_bytes_up,
        "client → server bytes: {ctx}"
    );
    assert_eq!(
        p.down,
        t.bytes_down + t.requests.control_bytes_down,
        "server → client bytes: {ctx}"
    );
    // One connection per receiver and per sender, none reopened.
    assert_eq!(t.connections_opened, clients_and_senders as u64, "{ctx}");
    assert_eq!(
        p.connections,
        t.connections_opened + CONTROL_CONNECTIONS,
        "{ctx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_bytes_match_the_proxy() {
    bytes_match_the_proxy("poll@100ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longpoll_bytes_match_the_proxy() {
    bytes_match_the_proxy("longpoll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_bytes_match_the_proxy() {
    bytes_match_the_proxy("sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_bytes_match_the_proxy() {
    bytes_match_the_proxy("socketio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_polling_bytes_match_the_proxy() {
    bytes_match_the_proxy("socketio-polling").await;
}
