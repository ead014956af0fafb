//! End to end on loopback, every strategy against the project's chat server (in process, named
//! with --target): no loss, no duplicates, nothing out of order, latencies recorded.

mod support;

use support::{assert_lossless, in_process_server, run, small_scenario};

async fn lossless(spec: &str) {
    let server = in_process_server().await;
    let scenario = small_scenario(Some(format!("http://{}", server.addr())));
    let r = run(spec, &scenario).await;
    assert_lossless(&r);
    assert!(
        !r.warnings
            .iter()
            .any(|w| matches!(w, loadgen::results::Warning::FellBackToFullList))
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_cursor_is_lossless() {
    lossless("poll@200ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_full_list_is_lossless() {
    lossless("poll-full@200ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_etag_is_lossless_and_counts_304s() {
    let server = in_process_server().await;
    let mut scenario = small_scenario(Some(format!("http://{}", server.addr())));
    // Slow messages, fast polls: most polls find nothing new and must get 304.
    scenario.rate = 2.0;
    scenario.duration = std::time::Duration::from_secs(3);
    let r = run("poll-etag@100ms", &scenario).await;
    assert_lossless(&r);
    let req = &r.traffic.requests;
    assert!(req.not_modified > 0, "{req:?}");
    assert!(req.not_modified <= req.empty_polls, "{req:?}");
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longpoll_is_lossless() {
    lossless("longpoll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_is_lossless() {
    lossless("sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_websocket_is_lossless() {
    lossless("socketio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_polling_is_lossless() {
    lossless("socketio-polling").await;
}

/// Poisson send times: still open loop, still lossless, and the plan counts what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisson_arrivals_are_lossless_and_planned() {
    let server = in_process_server().await;
    let mut scenario = small_scenario(Some(format!("http://{}", server.addr())));
    scenario.arrivals = loadgen::scenario::Arrivals::Poisson;
    let r = run("sse", &scenario).await;
    assert_lossless(&r);
    let s = &r.schedule;
    assert!(s.planned_sends > 0, "{s:?}");
    assert_eq!(
        s.planned_sends,
        r.delivery.probes_sent + r.delivery.probes_failed
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_latency_follows_the_model() {
    // Model: latency ≈ d + Uniform(0, T), so p50 ≈ T/2 plus request time. Generous band.
    let server = in_process_server().await;
    let scenario = small_scenario(Some(format!("http://{}", server.addr())));
    let r = run("poll@200ms", &scenario).await;
    assert_lossless(&r);
    let p50_ms = r.latency.corrected.p50_us as f64 / 1000.0;
    assert!(
        (40.0..=250.0).contains(&p50_ms),
        "p50 {p50_ms} ms for T = 200 ms"
    );
    assert!(r.latency.corrected.max_us > r.latency.corrected.p50_us);
    // Requests follow the schedule, not the message rate: N / T per second.
    let s = &r.schedule;
    assert!(s.planned_polls > 0 && s.achieved_polls > 0, "{s:?}");
    server.shutdown().await.expect("clean shutdown");
}

/// With a 200 ms Engine.IO heartbeat, a client that did not answer pings would be dropped many
/// times during the run; both transports must stay connected and lossless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_answers_pings_on_both_transports() {
    let config = chat_server::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        ping_interval: std::time::Duration::from_millis(200),
        ping_timeout: std::time::Duration::from_millis(300),
        ..chat_server::Config::default()
    };
    let server = chat_server::spawn(config).await.expect("server");
    let scenario = small_scenario(Some(format!("http://{}", server.addr())));
    for spec in ["socketio", "socketio-polling"] {
        let r = run(spec, &scenario).await;
        assert_lossless(&r);
        assert!(
            r.traffic.requests.errors.is_empty(),
            "{spec}: {:?}",
            r.traffic.requests.errors
        );
        assert_eq!(
            r.traffic.connections_opened,
            20 + 2,
            "{spec}: nobody reconnected"
        );
    }
    server.shutdown().await.expect("clean shutdown");
}
