//! Several chat-server processes sharing one real `redis-server` (`--redis`): every door on every
//! node gets every message once, in id order; a killed node loses nothing acknowledged; a Redis
//! restart answers 503 while down and then catches up without gaps or duplicates; a bad URL stops
//! the start with a clear error; a polling session another node holds gets engine.io's standard
//! "Session ID unknown".

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::child::ChildServer;
use common::sse::SseReader;
use common::{DEADLINE, PollingClient, WsClient, client, get_json, ids, metric, post, url};
use pushpoll_testkit::redis::RedisServer;
use serde_json::{Value, json};
use tokio::time::Instant;

async fn node(redis: &RedisServer) -> ChildServer {
    ChildServer::start(&["--redis", &redis.url()]).await
}

/// The `message` field of each message, in order.
fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["message"].as_str().expect("text").to_owned())
        .collect()
}

async fn via_websocket(mut socket: WsClient, n: usize) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.push(socket.next_message().await);
    }
    got
}

async fn via_polling(mut socket: PollingClient, n: usize) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        got.push(socket.next_message().await);
    }
    got
}

async fn via_sse(mut reader: SseReader, n: usize) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let event = reader.next_event(DEADLINE).await.expect("SSE stream open");
        if event.event == "message" {
            got.push(serde_json::from_str(&event.data).expect("JSON event"));
        }
    }
    got
}

/// Long polls from cursor 0 until `n` messages arrived.
async fn via_long_poll(addr: SocketAddr, n: usize) -> Vec<Value> {
    let mut got: Vec<Value> = Vec::with_capacity(n);
    let end = Instant::now() + DEADLINE;
    while got.len() < n {
        assert!(
            Instant::now() < end,
            "long poll: {} of {n} messages",
            got.len()
        );
        let cursor = got.last().map_or(0, |m| m["id"].as_u64().expect("id"));
        let page = get_json(addr, &format!("/messages?since={cursor}&wait=5s")).await;
        got.extend(page.as_array().expect("array").iter().cloned());
    }
    got
}

fn assert_one_to_n(door: &str, got: &[Value], n: u64) {
    assert_eq!(
        ids(&Value::Array(got.to_vec())),
        (1..=n).collect::<Vec<_>>(),
        "{door}: every id once, in order"
    );
}

#[tokio::test]
async fn every_door_on_every_node_gets_every_message_once_in_order() {
    let redis = RedisServer::start();
    let nodes = [node(&redis).await, node(&redis).await, node(&redis).await];
    const N: usize = 30;
    let mut doors = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let addr = n.addr;
        let ws = WsClient::connect(addr).await;
        let polling = PollingClient::connect(addr).await;
        let sse = SseReader::open(client().get(url(addr, "/events"))).await;
        doors.push((
            format!("node {i} websocket"),
            tokio::spawn(via_websocket(ws, N)),
        ));
        doors.push((
            format!("node {i} polling"),
            tokio::spawn(via_polling(polling, N)),
        ));
        doors.push((format!("node {i} SSE"), tokio::spawn(via_sse(sse, N))));
        doors.push((
            format!("node {i} long poll"),
            tokio::spawn(via_long_poll(addr, N)),
        ));
    }
    // Every fourth message through a Socket.IO sender, the others POSTed; spread over the nodes.
    let mut senders = Vec::new();
    for n in &nodes {
        senders.push(WsClient::connect(n.addr).await);
    }
    let mut sent = Vec::new();
    for k in 0..N {
        let text = format!("m{k}");
        let at = k % nodes.len();
        if k % 4 == 3 {
            senders[at]
                .emit_message(&json!({ "name": "sio", "message": text }))
                .await;
        } else {
            let stored = post(nodes[at].addr, "http", &text).await;
            assert_eq!(stored["message"], text.as_str());
        }
        sent.push(text);
    }
    sent.sort();
    let mut reference: Option<Vec<Value>> = None;
    for (door, task) in doors {
        let got = tokio::time::timeout(DEADLINE * 2, task)
            .await
            .unwrap_or_else(|_| panic!("{door}: all messages within the deadline"))
            .expect("door task");
        assert_one_to_n(&door, &got, N as u64);
        let mut seen = texts(&got);
        seen.sort();
        assert_eq!(seen, sent, "{door}: the messages sent");
        // The same bytes everywhere: name, message and ts as stored.
        match &reference {
            None => reference = Some(got),
            Some(first) => assert_eq!(&got, first, "{door}: same messages as the first door"),
        }
    }
    let mut appended = 0.0;
    for n in &nodes {
        assert_one_to_n(
            "cursor poll",
            get_json(n.addr, "/messages")
                .await
                .as_array()
                .expect("array"),
            N as u64,
        );
        assert_eq!(
            metric(n.addr, "pushpoll_broker_messages_followed_total").await,
            N as f64
        );
        assert_eq!(
            metric(n.addr, "pushpoll_broker_duplicates_ignored_total").await,
            0.0
        );
        assert_eq!(
            metric(n.addr, "pushpoll_broker_append_to_seen_seconds_count").await,
            N as f64
        );
        assert!(
            metric(
                n.addr,
                r#"pushpoll_broker_bytes_total{direction="to_redis"}"#
            )
            .await
                > 0.0
        );
        assert!(
            metric(
                n.addr,
                r#"pushpoll_broker_bytes_total{direction="from_redis"}"#
            )
            .await
                > 0.0
        );
        assert_eq!(metric(n.addr, "pushpoll_broker_up").await, 1.0);
        appended += metric(n.addr, "pushpoll_broker_appends_total").await;
        let health = get_json(n.addr, "/healthz").await;
        assert_eq!(health, json!({ "status": "ok", "redis": "up" }));
    }
    assert_eq!(
        appended, N as f64,
        "each message appended once, by the node it came to"
    );
}

#[tokio::test]
async fn a_killed_node_loses_nothing_acknowledged_and_its_clients_resume_on_another() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let mut acknowledged = Vec::new();
    for k in 0..10 {
        let target = if k % 2 == 0 { a.addr } else { b.addr };
        acknowledged.push(
            post(target, "n", &format!("m{k}")).await["id"]
                .as_u64()
                .expect("id"),
        );
    }
    // A client of node A read up to id 6, then A dies (SIGKILL).
    let page = get_json(a.addr, "/messages?limit=6").await;
    let cursor = ids(&page).last().copied().expect("six messages");
    assert_eq!(cursor, 6);
    drop(a);
    for k in 10..15 {
        acknowledged.push(
            post(b.addr, "n", &format!("m{k}")).await["id"]
                .as_u64()
                .expect("id"),
        );
    }
    assert_eq!(acknowledged, (1..=15).collect::<Vec<_>>());
    // The client resumes on B with its cursor: nothing missed, nothing twice.
    let response = client()
        .get(url(b.addr, &format!("/messages?since={cursor}")))
        .send()
        .await
        .expect("GET");
    assert!(response.headers().get(chat_server::MISSED_HEADER).is_none());
    let rest: Value = response.json().await.expect("JSON");
    assert_eq!(ids(&rest), (7..=15).collect::<Vec<_>>());
    // A new node (A restarted) starts with the whole history and the same ids.
    let a2 = node(&redis).await;
    assert_eq!(
        get_json(a2.addr, "/messages").await,
        get_json(b.addr, "/messages").await
    );
    assert_eq!(post(a2.addr, "n", "after").await["id"], 16);
    let since = get_json(b.addr, "/messages?since=15&wait=5s").await;
    assert_eq!(ids(&since), [16]);
    // The nodes share the ETag epoch: a poller sent to either node keeps getting 304s.
    let etag = client()
        .get(url(a2.addr, "/messages?since=16"))
        .send()
        .await
        .expect("GET")
        .headers()["etag"]
        .clone();
    let cached = client()
        .get(url(b.addr, "/messages?since=16"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(cached.status(), 304);
}

/// POSTs until one is stored (bounded); returns the stored message.
async fn post_until_stored(addr: SocketAddr, text: &str) -> Value {
    let end = Instant::now() + DEADLINE;
    loop {
        let response = client()
            .post(url(addr, "/messages"))
            .json(&json!({ "name": "n", "message": text }))
            .send()
            .await
            .expect("POST");
        if response.status() == 201 {
            return response.json().await.expect("JSON");
        }
        assert_eq!(response.status(), 503);
        assert!(Instant::now() < end, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_redis_restart_answers_503_then_catches_up_without_gaps_or_duplicates() {
    let mut redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let sse = SseReader::open(client().get(url(b.addr, "/events"))).await;
    let socket = WsClient::connect(a.addr).await;
    let sse_task = tokio::spawn(via_sse(sse, 10));
    let ws_task = tokio::spawn(via_websocket(socket, 10));
    for k in 0..5 {
        post(
            if k % 2 == 0 { a.addr } else { b.addr },
            "n",
            &format!("m{k}"),
        )
        .await;
    }
    get_json(b.addr, "/messages?since=4&wait=5s").await;

    redis.stop();
    let response = client()
        .post(url(a.addr, "/messages"))
        .json(&json!({ "name": "n", "message": "while down" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let error: Value = response.json().await.expect("JSON error");
    let text = error["error"].as_str().expect("error text");
    assert!(
        text.contains("not stored") && text.contains("Redis"),
        "{text}"
    );
    // The doors keep serving what they hold.
    for n in [&a, &b] {
        assert_eq!(ids(&get_json(n.addr, "/messages").await), [1, 2, 3, 4, 5]);
        let health = get_json(n.addr, "/healthz").await;
        assert_eq!(
            (health["status"].as_str(), health["redis"].as_str()),
            (Some("degraded"), Some("down"))
        );
    }

    // Redis comes back empty (no persistence): ids go on from the nodes' newest, no gap.
    redis.restart();
    assert_eq!(post_until_stored(a.addr, "m5").await["id"], 6);
    for k in 6..10 {
        post_until_stored(if k % 2 == 0 { a.addr } else { b.addr }, &format!("m{k}")).await;
    }
    for (door, task) in [("SSE on B", sse_task), ("websocket on A", ws_task)] {
        let got = tokio::time::timeout(DEADLINE * 2, task)
            .await
            .unwrap_or_else(|_| panic!("{door}: all messages"))
            .expect("task");
        assert_one_to_n(door, &got, 10);
        assert_eq!(
            texts(&got),
            (0..10).map(|k| format!("m{k}")).collect::<Vec<_>>()
        );
    }
    for n in [&a, &b] {
        assert_eq!(
            ids(&get_json(n.addr, "/messages?since=0&wait=5s").await),
            (1..=10).collect::<Vec<_>>()
        );
        assert!(metric(n.addr, "pushpoll_broker_reconnects_total").await >= 1.0);
        assert_eq!(
            metric(n.addr, "pushpoll_broker_gap_messages_total").await,
            0.0
        );
        assert_eq!(
            metric(n.addr, "pushpoll_broker_duplicates_ignored_total").await,
            0.0
        );
    }
    assert!(metric(a.addr, "pushpoll_broker_append_failures_total").await >= 1.0);

    // Redis loses everything again; once the running nodes are back on it, a node that starts
    // empty (nothing in Redis to load) still gets an id above every id they hold.
    let before = [
        metric(a.addr, "pushpoll_broker_reconnects_total").await,
        metric(b.addr, "pushpoll_broker_reconnects_total").await,
    ];
    redis.restart();
    for (n, before) in [&a, &b].into_iter().zip(before) {
        // Only the follower talks to Redis now: a reconnect then `up` means it raised the
        // counter and read on.
        common::wait_for_metric(n.addr, "pushpoll_broker_reconnects_total", |v| v > before).await;
        common::wait_for_metric(n.addr, "pushpoll_broker_up", |v| v == 1.0).await;
    }
    let c = node(&redis).await;
    assert_eq!(ids(&get_json(c.addr, "/messages").await), Vec::<u64>::new());
    assert_eq!(post(c.addr, "n", "from the new node").await["id"], 11);
    let next = get_json(b.addr, "/messages?since=10&wait=5s").await;
    assert_eq!(
        texts(next.as_array().expect("array")),
        ["from the new node"]
    );
}

/// Runs the binary with `args` and returns (success, stderr); bounded in time.
async fn start_failure(args: &[&str]) -> (bool, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chat-server runs");
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("chat-server exits within the deadline")
        .expect("output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_bad_or_unreachable_redis_url_stops_the_start_with_a_clear_error() {
    let (ok, stderr) = start_failure(&["--redis", "localhost:6379"]).await;
    assert!(!ok);
    assert!(stderr.contains("is not a usable Redis URL"), "{stderr}");
    assert!(stderr.contains("redis://HOST:PORT"), "{stderr}");
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let (ok, stderr) = start_failure(&["--redis", &format!("redis://127.0.0.1:{port}")]).await;
    assert!(!ok);
    assert!(
        stderr.contains(&format!("Redis at redis://127.0.0.1:{port} is unreachable")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_polling_session_held_by_another_node_gets_session_id_unknown() {
    let redis = RedisServer::start();
    let a = node(&redis).await;
    let b = node(&redis).await;
    let open = client()
        .get(url(a.addr, "/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .expect("handshake")
        .text()
        .await
        .expect("body");
    let handshake: Value =
        serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("JSON");
    let sid = handshake["sid"].as_str().expect("sid");
    // Without sticky sessions the load balancer sends the next poll to B.
    for request in [
        client().get(url(
            b.addr,
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        )),
        client()
            .post(url(
                b.addr,
                &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
            ))
            .body("40"),
    ] {
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(body, json!({ "code": 1, "message": "Session ID unknown" }));
    }
}

#[tokio::test]
async fn the_broker_byte_counters_equal_the_bytes_on_the_wire() {
    let redis = RedisServer::start();
    let proxy = common::redis::CountingProxy::start(redis.port()).await;
    let n = ChildServer::start(&["--redis", &proxy.url()]).await;
    let mut socket = WsClient::connect(n.addr).await;
    for k in 0..20 {
        post(n.addr, "n", &format!("message {k} {}", "x".repeat(k * 50))).await;
    }
    socket
        .emit_message(&json!({ "name": "sio", "message": "é ✓" }))
        .await;
    get_json(n.addr, "/messages?since=20&wait=5s").await;
    // The follower's XREAD never stops: read both sides until they agree (bounded).
    let end = Instant::now() + DEADLINE;
    loop {
        let to = metric(
            n.addr,
            r#"pushpoll_broker_bytes_total{direction="to_redis"}"#,
        )
        .await as u64;
        let from = metric(
            n.addr,
            r#"pushpoll_broker_bytes_total{direction="from_redis"}"#,
        )
        .await as u64;
        let (wire_to, wire_from) = proxy.counted();
        if (to, from) == (wire_to, wire_from) {
            assert!(to > 0 && from > 0);
            break;
        }
        assert!(
            Instant::now() < end,
            "counted to/from Redis {to}/{from}, on the wire {wire_to}/{wire_from}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
