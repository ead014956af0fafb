//! Shutting down ends open long polls, SSE streams and sockets, and `shutdown()` returns promptly.

mod common;

use std::time::Duration;

use common::sse::SseReader;
use common::{PollingClient, WsClient, client, start, url};

#[tokio::test]
async fn shutdown_ends_open_streams_and_sockets() {
    let server = start().await;
    let addr = server.addr();
    let mut sse = SseReader::open(client().get(url(addr, "/events"))).await;
    let long = tokio::spawn(async move {
        client()
            .get(url(addr, "/messages?since=0&wait=60s"))
            .send()
            .await
            .expect("long poll")
            .text()
            .await
    });
    let mut ws = WsClient::connect(addr).await;
    let mut polling = PollingClient::connect(addr).await;
    common::wait_for_metric(addr, "pushpoll_long_polls_waiting", |v| v == 1.0).await;

    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .expect("shutdown completes within 5 s")
        .expect("clean shutdown");

    assert_eq!(long.await.expect("task").expect("answered").as_str(), "[]");
    assert!(
        sse.next_event(common::DEADLINE).await.is_none(),
        "SSE stream ended"
    );
    assert!(
        ws.next_text().await.is_none() || ws.next_text().await.is_none(),
        "WebSocket closed"
    );
    let mut ended = false;
    for _ in 0..3 {
        if polling
            .next_packet()
            .await
            .is_none_or(|p| p.starts_with('1') || p == "41")
        {
            ended = true;
            break;
        }
    }
    assert!(ended, "polling session closed");
}
