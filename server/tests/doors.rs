//! A message posted by HTTP reaches every door exactly once and in order; a Socket.IO emit is
//! stored like a POST; malformed Socket.IO events are ignored without harming the socket.

mod common;

use std::net::SocketAddr;

use common::sse::SseReader;
use common::{DEADLINE, PollingClient, WsClient, client, get_json, ids, post, start, url};
use serde_json::{Value, json};

const COUNT: u64 = 5;

/// Cursor polling until `count` messages after `since` were seen.
async fn cursor_poll(addr: SocketAddr, since: u64, count: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut cursor = since;
    let end = tokio::time::Instant::now() + DEADLINE;
    while seen.len() < count {
        assert!(
            tokio::time::Instant::now() < end,
            "cursor poll saw only {seen:?}"
        );
        let page = ids(&get_json(addr, &format!("/messages?since={cursor}")).await);
        cursor = page.last().copied().unwrap_or(cursor);
        seen.extend(page);
    }
    seen
}

/// Long polling until `count` messages after `since` were seen.
async fn long_poll(addr: SocketAddr, since: u64, count: usize) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut cursor = since;
    for _ in 0..count * 4 {
        if seen.len() >= count {
            break;
        }
        let page = ids(&get_json(addr, &format!("/messages?since={cursor}&wait=10s")).await);
        cursor = page.last().copied().unwrap_or(cursor);
        seen.extend(page);
    }
    seen
}

#[tokio::test]
async fn http_posts_reach_every_door_once_and_in_order() {
    let server = start().await;
    let addr = server.addr();
    let mut sse = SseReader::open(client().get(url(addr, "/events"))).await;
    let mut ws = WsClient::connect(addr).await;
    let mut polling = PollingClient::connect(addr).await;
    common::wait_for_metric(
        addr,
        "pushpoll_sockets_connected{transport=\"polling\"}",
        |v| v == 1.0,
    )
    .await;
    let long = tokio::spawn(long_poll(addr, 0, COUNT as usize));
    common::wait_for_metric(addr, "pushpoll_long_polls_waiting", |v| v == 1.0).await;

    let mut sent = Vec::new();
    for i in 1..=COUNT {
        sent.push(post(addr, "ann", &format!("message {i}")).await);
    }
    let expected: Vec<u64> = (1..=COUNT).collect();

    assert_eq!(cursor_poll(addr, 0, COUNT as usize).await, expected);
    assert_eq!(long.await.expect("long poll task"), expected);
    let mut sse_seen = Vec::new();
    for _ in 0..COUNT {
        let event = sse.next_event(DEADLINE).await.expect("SSE event");
        let message: Value = serde_json::from_str(&event.data).expect("JSON data");
        assert_eq!(event.id, Some(message["id"].to_string()));
        sse_seen.push(message);
    }
    assert_eq!(sse_seen, sent);
    let mut ws_seen = Vec::new();
    let mut polling_seen = Vec::new();
    for _ in 0..COUNT {
        ws_seen.push(ws.next_message().await);
        polling_seen.push(polling.next_message().await);
    }
    assert_eq!(ws_seen, sent);
    assert_eq!(polling_seen, sent);

    // Exactly once: the next thing every push door delivers is the next message, not a repeat.
    let sentinel = post(addr, "ann", "sentinel").await;
    let event = sse.next_event(DEADLINE).await.expect("SSE event");
    assert_eq!(
        serde_json::from_str::<Value>(&event.data).expect("json"),
        sentinel
    );
    assert_eq!(ws.next_message().await, sentinel);
    assert_eq!(polling.next_message().await, sentinel);
    assert_eq!(
        get_json(addr, &format!("/messages?since={}", COUNT + 1)).await,
        json!([])
    );
    assert_eq!(
        common::metric(addr, "pushpoll_broadcasts_total").await,
        (COUNT + 1) as f64
    );
}

#[tokio::test]
async fn sse_resumes_after_last_event_id_and_announces_missed_history() {
    let server = common::start_with(chat_server::Config {
        capacity: 3,
        ..common::config()
    })
    .await;
    let addr = server.addr();
    for i in 1..=5 {
        post(addr, "ann", &format!("m{i}")).await;
    }
    let mut resumed = SseReader::open(
        client()
            .get(url(addr, "/events"))
            .header("last-event-id", "3"),
    )
    .await;
    for id in [4, 5] {
        assert_eq!(
            resumed.next_event(DEADLINE).await.expect("event").id,
            Some(id.to_string())
        );
    }
    let mut behind = SseReader::open(client().get(url(addr, "/events?since=0"))).await;
    let missed = behind.next_event(DEADLINE).await.expect("missed event");
    assert_eq!(missed.event, "missed");
    assert_eq!(
        serde_json::from_str::<Value>(&missed.data).expect("json"),
        json!({"missed": 2, "oldest_id": 3})
    );
    for id in [3, 4, 5] {
        assert_eq!(
            behind.next_event(DEADLINE).await.expect("event").id,
            Some(id.to_string())
        );
    }
}

#[tokio::test]
async fn sse_cursor_ahead_of_the_log_gets_a_reset_then_new_messages() {
    let server = start().await;
    let addr = server.addr();
    for i in 1..=2 {
        post(addr, "ann", &format!("m{i}")).await;
    }
    // A browser reconnecting after a restart: its Last-Event-ID is from the old, longer log.
    let mut ahead = SseReader::open(
        client()
            .get(url(addr, "/events"))
            .header("last-event-id", "500"),
    )
    .await;
    let reset = ahead.next_event(DEADLINE).await.expect("reset event");
    assert_eq!(reset.event, "reset");
    assert_eq!(
        reset.id.as_deref(),
        Some("2"),
        "EventSource resumes from here"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&reset.data).expect("json"),
        json!({"latest_id": 2})
    );
    let sent = post(addr, "ann", "after the reset").await;
    let next = ahead.next_event(DEADLINE).await.expect("the next message");
    assert_eq!(next.event, "message");
    assert_eq!(next.id.as_deref(), Some("3"));
    assert_eq!(
        serde_json::from_str::<Value>(&next.data).expect("json"),
        sent
    );

    // `?since=` ahead too, here of an empty log (a fresh server): resumes from 0.
    let fresh = start().await;
    let mut since = SseReader::open(client().get(url(fresh.addr(), "/events?since=7"))).await;
    let reset = since.next_event(DEADLINE).await.expect("reset event");
    assert_eq!(
        (reset.event.as_str(), reset.id.as_deref()),
        ("reset", Some("0"))
    );
    assert_eq!(
        serde_json::from_str::<Value>(&reset.data).expect("json"),
        json!({"latest_id": 0})
    );
    let first = post(fresh.addr(), "bob", "first").await;
    let next = since.next_event(DEADLINE).await.expect("the first message");
    assert_eq!(
        serde_json::from_str::<Value>(&next.data).expect("json"),
        first
    );
}

#[tokio::test]
async fn socket_emits_are_stored_and_broadcast_and_bad_payloads_are_ignored() {
    let server = start().await;
    let addr = server.addr();
    let mut sender = WsClient::connect(addr).await;
    let mut listener = PollingClient::connect(addr).await;

    sender.send("42[\"message\",\"just text\"]").await;
    sender
        .emit_message(&json!({"name": 1, "message": "x"}))
        .await;
    sender
        .emit_message(&json!({"name": "a", "message": ""}))
        .await;
    sender.send("42[\"message\"]").await;
    sender
        .emit_message(&json!({"name": "sock", "message": "from a socket"}))
        .await;

    let stored = ids(&get_json(addr, "/messages?since=0&wait=10s").await);
    assert_eq!(stored, [1], "only the valid emit is stored");
    let message = get_json(addr, "/messages").await[0].clone();
    assert_eq!(
        (message["name"].as_str(), message["message"].as_str()),
        (Some("sock"), Some("from a socket"))
    );
    assert_eq!(
        sender.next_message().await,
        message,
        "the sender gets its own message too"
    );
    assert_eq!(listener.next_message().await, message);
    common::wait_for_metric(addr, "pushpoll_socket_events_rejected_total", |v| v == 4.0).await;
    assert_eq!(
        common::metric(addr, "pushpoll_messages_stored_total{door=\"socketio\"}").await,
        1.0
    );
}
