//! Hostile peers at the HTTP level (issue 13): clients that never read, stall mid-headers or
//! mid-body, hold connections idle, flood the server with connections, or send broken bodies.
//! Every test asserts a bounded outcome: a close, a status, memory under a cap — never a time.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::{self, RawResponse};
use common::{DEADLINE, client, url};
use tokio::time::Instant;

/// Short timeouts for the tests that wait for one.
const SHORT: Duration = Duration::from_millis(300);
/// How long a test waits for a close that a SHORT timeout should cause.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

fn config() -> chat_server::Config {
    common::config()
}

async fn get(stream: &mut tokio::net::TcpStream, path: &str) -> RawResponse {
    raw::send(stream, &format!("GET {path} HTTP/1.1\r\nhost: t\r\n\r\n")).await;
    raw::read_response(stream, false, DEADLINE)
        .await
        .expect("a response")
}

// ---------------------------------------------------------------------------------------------
// Item 1: an unread `GET /messages` must not pin a copy of the history.

/// History for the memory tests: 2,000 messages of 8 KB (the POST body just under the default
/// --max-message-bytes).
const HISTORY: usize = 2_000;
const MESSAGE_CHARS: usize = 8_160;

async fn fill(addr: SocketAddr) {
    let text = "x".repeat(MESSAGE_CHARS);
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let text = text.clone();
            tokio::spawn(async move {
                let http = client();
                for _ in 0..HISTORY / 4 {
                    let sent = http
                        .post(url(addr, "/messages"))
                        .json(&serde_json::json!({ "name": "n", "message": text }))
                        .send()
                        .await
                        .expect("POST");
                    assert_eq!(sent.status(), 201);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("sender");
    }
}

/// The highest RSS seen over a few samples (memory the answers pin shows up as they start).
async fn settled_rss(server: &common::child::ChildServer) -> u64 {
    let mut high = 0;
    for _ in 0..10 {
        high = high.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    high
}

async fn answered_gets(addr: SocketAddr) -> f64 {
    common::metric(
        addr,
        "pushpoll_http_requests_total{route=\"GET /messages\",status=\"200\"}",
    )
    .await
}

#[tokio::test]
async fn unread_full_history_answers_pin_no_copies_over_http1() {
    let server = common::child::ChildServer::start(&["--capacity", "2000"]).await;
    let addr = server.addr;
    fill(addr).await;
    // One full answer read to the end: the allocator has seen what serving one costs.
    let mut reader = raw::connect(addr).await;
    let whole = get(&mut reader, "/messages").await;
    assert_eq!(whole.status, 200);
    let history_bytes = whole.body.len() as u64;
    assert!(history_bytes > 16_000_000, "{history_bytes}");
    let before_gets = answered_gets(addr).await;
    let before = settled_rss(&server).await;

    let mut unread = Vec::new();
    for _ in 0..10 {
        let mut stream = raw::connect_small_window(addr).await;
        raw::send(&mut stream, "GET /messages HTTP/1.1\r\nhost: t\r\n\r\n").await;
        unread.push(stream);
    }
    common::wait_for_metric(
        addr,
        "pushpoll_http_requests_total{route=\"GET /messages\",status=\"200\"}",
        |v| v >= before_gets + 10.0,
    )
    .await;
    let after = settled_rss(&server).await;
    let grown = after.saturating_sub(before);
    println!(
        "10 unread answers of {history_bytes} B: RSS {before} -> {after} (+{:.1} MB)",
        grown as f64 / 1e6
    );
    // A copy per answer would be 10 × 16.5 MB.
    assert!(
        grown < 40_000_000,
        "10 unread answers added {grown} B of RSS"
    );

    // The answers are still whole: one of them, read to the end, is the full history.
    let mut late = unread.pop().expect("a stream");
    let answer = raw::read_response(&mut late, false, Duration::from_secs(30))
        .await
        .expect("the unread answer, read late");
    assert_eq!(answer.body, whole.body);
    let parsed: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    assert_eq!(parsed.as_array().map(Vec::len), Some(HISTORY));
}

#[tokio::test]
async fn http2_streams_are_capped_and_unread_answers_pin_no_copies() {
    let server = common::child::ChildServer::start(&["--capacity", "2000"]).await;
    let addr = server.addr;
    fill(addr).await;
    let mut reader = raw::connect(addr).await;
    assert_eq!(get(&mut reader, "/messages").await.status, 200);
    let before = settled_rss(&server).await;

    // HTTP/2 with prior knowledge; a stream window of 0: the server may send no body byte.
    let tcp = raw::connect(addr).await;
    let (mut h2, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let (answered_tx, mut answered_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut sent = 0;
    for _ in 0..40 {
        let Ok(Ok(ready)) = tokio::time::timeout(SHORT * 3, h2.clone().ready()).await else {
            break; // the server's stream limit holds further requests back
        };
        h2 = ready;
        let request = http::Request::get(format!("http://{addr}/messages"))
            .body(())
            .expect("request");
        let Ok((response, _)) = h2.send_request(request, true) else {
            break;
        };
        sent += 1;
        let answered = answered_tx.clone();
        tokio::spawn(async move {
            if let Ok(response) = response.await {
                // Holding the response (and its unread body) keeps the stream open.
                answered.send(response).ok();
            }
        });
    }
    let mut open = Vec::new();
    let end = Instant::now() + CLOSE_BOUND;
    while let Ok(Some(response)) = tokio::time::timeout(
        end.saturating_duration_since(Instant::now()),
        answered_rx.recv(),
    )
    .await
    {
        assert_eq!(response.status(), 200);
        open.push(response);
        if open.len() == 40 {
            break;
        }
    }
    let after = settled_rss(&server).await;
    let grown = after.saturating_sub(before);
    println!(
        "HTTP/2: {sent} requests sent, {} answered and unread: RSS {before} -> {after} (+{:.1} MB)",
        open.len(),
        grown as f64 / 1e6
    );
    assert_eq!(open.len(), 32, "--http2-max-streams (32) answers at a time");
    assert!(
        grown < 40_000_000,
        "32 unread HTTP/2 answers added {grown} B of RSS"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 4: timeouts, keepalive, and a connection limit.

#[tokio::test]
async fn idle_connections_are_closed_but_long_requests_are_not() {
    let server = common::start_with(chat_server::Config {
        idle_timeout: SHORT,
        header_timeout: SHORT,
        ..config()
    })
    .await;
    let addr = server.addr();

    // Idle after a request, and idle from the start: both closed.
    let mut used = raw::connect(addr).await;
    assert_eq!(get(&mut used, "/healthz").await.status, 200);
    let mut silent = raw::connect(addr).await;
    assert_eq!(
        raw::closed_within(&mut used, CLOSE_BOUND).await.as_deref(),
        Some(&b""[..]),
        "an idle keep-alive connection is closed"
    );
    assert!(
        raw::closed_within(&mut silent, CLOSE_BOUND).await.is_some(),
        "a connection that never sent a request is closed"
    );

    // A long poll, an SSE stream and a WebSocket outlive the idle timeout several times over.
    let mut long_poll = raw::connect(addr).await;
    raw::send(
        &mut long_poll,
        "GET /messages?since=0&wait=1500ms HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await;
    let mut sse = common::sse::SseReader::open(client().get(url(addr, "/events"))).await;
    let mut ws = common::WsClient::connect(addr).await;
    let answer = raw::read_response(&mut long_poll, false, DEADLINE)
        .await
        .expect("the long poll answers when its wait runs out");
    assert_eq!((answer.status, &answer.body[..]), (200, &b"[]"[..]));
    common::post(addr, "ann", "still here").await;
    let event = sse
        .next_event(DEADLINE)
        .await
        .expect("SSE stream still open");
    assert!(event.data.contains("still here"));
    assert_eq!(ws.next_message().await["message"], "still here");
    let idle = common::metric(addr, "pushpoll_http_timeouts_total{kind=\"idle\"}").await;
    assert!(idle >= 2.0, "idle timeouts counted: {idle}");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server = common::start_with(chat_server::Config {
        header_timeout: SHORT,
        ..config()
    })
    .await;
    let addr = server.addr();
    let stream = raw::connect(addr).await;
    let (mut read, mut write) = stream.into_split();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        let closed = tokio::time::timeout(
            CLOSE_BOUND,
            tokio::io::AsyncReadExt::read_to_end(&mut read, &mut seen),
        )
        .await;
        (closed.is_ok(), seen)
    });
    use tokio::io::AsyncWriteExt;
    let mut lines_sent = 0;
    // One header line every 100 ms, 50 at most: 5 s of headers that never end.
    write
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n")
        .await
        .expect("write");
    for i in 0..50 {
        if watcher.is_finished()
            || write
                .write_all(format!("x-{i}: y\r\n").as_bytes())
                .await
                .is_err()
        {
            break;
        }
        lines_sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (closed, seen) = watcher.await.expect("watcher");
    assert!(closed, "the server closed the connection");
    assert!(
        lines_sent < 50,
        "closed before the headers ended ({lines_sent} lines)"
    );
    assert!(seen.is_empty(), "no answer to headers that never ended");
    let header = common::metric(addr, "pushpoll_http_timeouts_total{kind=\"header\"}").await;
    assert_eq!(header, 1.0);
}

#[tokio::test]
async fn a_body_that_never_comes_gets_408_and_a_close() {
    let server = common::start_with(chat_server::Config {
        body_timeout: SHORT,
        ..config()
    })
    .await;
    let addr = server.addr();
    let mut stream = raw::connect(addr).await;
    raw::send(
        &mut stream,
        "POST /messages HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
         content-length: 100\r\n\r\n{\"name\":",
    )
    .await;
    let answer = raw::read_response(&mut stream, false, CLOSE_BOUND)
        .await
        .expect("an answer before the bound");
    assert_eq!(answer.status, 408);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(raw::closed_within(&mut stream, CLOSE_BOUND).await.is_some());
    assert_eq!(server.log().latest_id(), 0, "nothing stored");
    let body = common::metric(addr, "pushpoll_http_timeouts_total{kind=\"body\"}").await;
    assert_eq!(body, 1.0);
}

/// The `tr` (timer) field of the server side of a loopback connection in `/proc/net/tcp`:
/// 2 means the socket's keepalive timer is pending.
fn server_socket_timer(server: SocketAddr, client: SocketAddr) -> Option<String> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => String::new(),
    };
    let (local, remote) = (hex(server), hex(client));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str()) && fields.get(2) == Some(&remote.as_str()))
            .then(|| {
                fields
                    .get(5)
                    .and_then(|t| t.split(':').next())
                    .map(str::to_owned)
            })
            .flatten()
    })
}

#[tokio::test]
async fn accepted_connections_have_tcp_keepalive() {
    let server = common::start_with(chat_server::Config {
        tcp_keepalive: Duration::from_secs(7),
        ..config()
    })
    .await;
    let addr = server.addr();
    let mut stream = raw::connect(addr).await;
    // After one exchange the server has accepted and configured the socket, and nothing is in
    // flight (no retransmission timer).
    assert_eq!(get(&mut stream, "/healthz").await.status, 200);
    let local = stream.local_addr().expect("local addr");
    let mut timer = None;
    for _ in 0..50 {
        timer = server_socket_timer(addr, local);
        if timer.as_deref() == Some("02") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(timer.as_deref(), Some("02"), "the keepalive timer runs");
}

#[tokio::test]
async fn over_the_connection_limit_a_503_while_healthz_and_metrics_answer() {
    let server = common::start_with(chat_server::Config {
        max_connections: 4,
        // The reserve's lifetime; long enough that its connections are held through the test.
        header_timeout: Duration::from_secs(20),
        ..config()
    })
    .await;
    let addr = server.addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(raw::connect(addr).await);
    }
    // Connections are accepted in order: the four above hold every slot.
    let mut over = raw::connect(addr).await;
    let refused = get(&mut over, "/messages").await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(refused.header("connection"), Some("close"));
    assert!(String::from_utf8_lossy(&refused.body).contains("--max-connections"));
    assert!(raw::closed_within(&mut over, CLOSE_BOUND).await.is_some());

    let mut health = raw::connect(addr).await;
    let ok = get(&mut health, "/healthz").await;
    assert_eq!(
        (ok.status, &ok.body[..]),
        (200, &b"{\"status\":\"ok\"}"[..])
    );
    drop(health);

    // The reserve full too (64 silent connections): the next connection is closed at once,
    // with no answer.
    let mut reserve = Vec::new();
    for _ in 0..64 {
        reserve.push(raw::connect(addr).await);
    }
    let mut dropped = raw::connect(addr).await;
    raw::send(&mut dropped, "GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert_eq!(
        raw::closed_within(&mut dropped, CLOSE_BOUND)
            .await
            .as_deref(),
        Some(&b""[..]),
        "closed without an answer"
    );
    drop(reserve);
    // Once the reserve has room again, /metrics answers and shows what happened.
    let mut text = String::new();
    for _ in 0..50 {
        let mut stream = raw::connect(addr).await;
        raw::send(&mut stream, "GET /metrics HTTP/1.1\r\nhost: t\r\n\r\n").await;
        if let Some(r) = raw::read_response(&mut stream, false, DEADLINE).await {
            text = String::from_utf8_lossy(&r.body).into_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let series = |s: &str| common::metric_in(&text, s).unwrap_or(-1.0);
    assert!(series("pushpoll_tcp_connections_over_limit_total{outcome=\"reserve\"}") >= 66.0);
    assert!(series("pushpoll_tcp_connections_over_limit_total{outcome=\"closed\"}") >= 1.0);
    assert!(series("pushpoll_tcp_connections_open") >= 4.0);
    drop(held);
}

// ---------------------------------------------------------------------------------------------
// Item 7: broken bodies, huge announced bodies, HEAD, HTTP/2 cleartext.

#[tokio::test]
async fn a_malformed_chunked_body_is_400() {
    let server = common::start_with(config()).await;
    let mut stream = raw::connect(server.addr()).await;
    raw::send(
        &mut stream,
        "POST /messages HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    )
    .await;
    let answer = raw::read_response(&mut stream, false, DEADLINE)
        .await
        .expect("an answer");
    assert_eq!(answer.status, 400);
    assert!(String::from_utf8_lossy(&answer.body).contains("malformed"));
    assert_eq!(server.log().latest_id(), 0);
}

#[tokio::test]
async fn a_huge_content_length_is_refused_from_the_header() {
    let server = common::start_with(chat_server::Config {
        body_timeout: Duration::from_secs(60),
        ..config()
    })
    .await;
    let mut stream = raw::connect(server.addr()).await;
    raw::send(
        &mut stream,
        "POST /messages HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
         content-length: 104857600\r\n\r\n",
    )
    .await;
    // No body byte is sent: the answer can only come from the header (the body timeout is 60 s).
    let answer = raw::read_response(&mut stream, false, CLOSE_BOUND)
        .await
        .expect("413 without a body byte");
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(raw::closed_within(&mut stream, CLOSE_BOUND).await.is_some());
}

#[tokio::test]
async fn head_messages_has_the_get_headers_and_no_body() {
    let server = common::start_with(config()).await;
    let addr = server.addr();
    for text in ["one", "two", "three"] {
        common::post(addr, "ann", text).await;
    }
    let mut stream = raw::connect(addr).await;
    let full = get(&mut stream, "/messages").await;
    raw::send(&mut stream, "HEAD /messages HTTP/1.1\r\nhost: t\r\n\r\n").await;
    let head = raw::read_response(&mut stream, true, DEADLINE)
        .await
        .expect("HEAD answer");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );
    assert_eq!(head.header("etag"), full.header("etag"));
    assert!(head.body.is_empty());
    // Nothing followed the head: the next answer on this connection is the next request's.
    assert_eq!(get(&mut stream, "/healthz").await.status, 200);
}

#[tokio::test]
async fn http2_cleartext_serves_the_same_answers_with_its_limits() {
    let server = common::start_with(chat_server::Config {
        idle_timeout: SHORT,
        ..config()
    })
    .await;
    let addr = server.addr();
    common::post(addr, "ann", "over h2").await;
    let tcp = raw::connect(addr).await;
    let (h2, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let mut h2 = h2.ready().await.expect("ready");
    let request = http::Request::get(format!("http://{addr}/messages"))
        .body(())
        .expect("request");
    let (response, _) = h2.send_request(request, true).expect("send");
    let response = response.await.expect("response");
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("data");
        body.flow_control()
            .release_capacity(chunk.len())
            .expect("release");
        bytes.extend_from_slice(&chunk);
    }
    let h1 = client()
        .get(url(addr, "/messages"))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(bytes, h1);
    // The server's SETTINGS arrived with the answer: its stream limit is --http2-max-streams.
    assert_eq!(h2.current_max_send_streams(), 32);
    // Idle (no stream open) past --idle-timeout: the server says GOAWAY and closes.
    let ended = tokio::time::timeout(CLOSE_BOUND, connection).await;
    assert!(ended.is_ok(), "the idle HTTP/2 connection was closed");
}
