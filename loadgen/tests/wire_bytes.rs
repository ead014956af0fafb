//! The bytes the generator counts at its sockets agree exactly with the bytes the server counts at
//! its accepted connections (`pushpoll_tcp_bytes_*` in /metrics), for every strategy.

mod support;

use support::{in_process_server, run, scrape, small_scenario};

const RECEIVED: &str = "pushpoll_tcp_bytes_received_total";
const SENT: &str = "pushpoll_tcp_bytes_sent_total";

async fn bytes_agree(spec: &str) {
    let server = in_process_server().await;
    let scenario = small_scenario(Some(format!("http://{}", server.addr())));
    let before = scrape(server.addr()).await;
    let r = run(spec, &scenario).await;
    let after = scrape(server.addr()).await;
    let t = &r.traffic;
    let up = t.bytes_up + t.requests.control_bytes_up;
    let down = t.bytes_down + t.requests.control_bytes_down;
    assert!(
        t.receiver_bytes > 0 && t.bytes_up > 0 && t.bytes_down > 0,
        "{t:?}"
    );
    // A scrape's request is read before its counters are rendered, its answer written after:
    // the `after` request and the `before` answer fall inside the deltas.
    assert_eq!(
        after.value(RECEIVED) - before.value(RECEIVED),
        up + after.request_bytes,
        "{spec}: server received vs generator sent ({t:?})"
    );
    assert_eq!(
        after.value(SENT) - before.value(SENT),
        down + before.response_bytes,
        "{spec}: server sent vs generator received ({t:?})"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_bytes_match_the_server() {
    bytes_agree("poll@200ms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longpoll_bytes_match_the_server() {
    bytes_agree("longpoll").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_bytes_match_the_server() {
    bytes_agree("sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_bytes_match_the_server() {
    bytes_agree("socketio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_polling_bytes_match_the_server() {
    bytes_agree("socketio-polling").await;
}
