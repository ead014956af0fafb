//! A Socket.IO socket whose send queue fills up is counted in /metrics and disconnected.

mod common;

use common::{PollingClient, WsClient, post, start_with};

#[tokio::test]
async fn a_full_send_queue_is_counted_and_the_socket_disconnected() {
    let config = chat_server::Config {
        socket_buffer: 4,
        ..common::config()
    };
    let server = start_with(config).await;
    let addr = server.addr();
    // A polling client that does not poll: its queue only drains when it asks.
    let mut stalled = PollingClient::connect(addr).await;
    let mut healthy = WsClient::connect(addr).await;
    for i in 0..10 {
        post(addr, "ann", &format!("burst {i}")).await;
        // The healthy socket keeps up, so only the stalled one overflows.
        assert_eq!(
            healthy.next_message().await["message"],
            format!("burst {i}")
        );
    }
    let overflows = common::metric(addr, "pushpoll_socket_send_overflows_total").await;
    assert!(overflows >= 1.0, "overflows: {overflows}");

    // The stalled client drains what was queued, then learns it was disconnected ("41").
    let mut received = Vec::new();
    let mut nudged = false;
    let disconnected = loop {
        match stalled.next_packet().await {
            Some(p) if p == "41" => break true,
            Some(p) => {
                if let Some(m) = common::parse_event(&p) {
                    received.push(m["message"].as_str().unwrap_or_default().to_owned());
                }
                // One poll drained the queue; the next broadcast retries the pending disconnect.
                if !received.is_empty() && !nudged {
                    nudged = true;
                    post(addr, "ann", "nudge").await;
                }
            }
            None => break false,
        }
    };
    assert!(
        disconnected,
        "the overflowed socket got a server disconnect"
    );
    let in_order: Vec<String> = (0..received.len()).map(|i| format!("burst {i}")).collect();
    assert_eq!(received, in_order, "what it got is a gap-free prefix");
    assert!(
        received.len() < 10,
        "its queue overflowed, so it cannot have got everything"
    );
    common::wait_for_metric(addr, "pushpoll_socket_overflow_disconnects_total", |v| {
        v == 1.0
    })
    .await;
    // The healthy socket is untouched.
    assert_eq!(healthy.next_message().await["message"], "nudge");
}
