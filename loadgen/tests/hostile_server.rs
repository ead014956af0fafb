//! Hostile targets: whatever a server answers — silence, garbage, the wrong JSON, an endless
//! body, a Socket.IO server that never pings or never finishes its handshake, a frame cut off
//! mid-way — a run ends in a clear error or a completed, flagged result within a bounded time,
//! never a hang, a panic or unbounded memory. The servers here are raw TCP (and raw WebSocket)
//! written for the test, on 127.0.0.1.

mod support;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use loadgen::driver::{RunError, run_strategy};
use loadgen::results::{Outcome, RunResult};
use loadgen::scenario::Scenario;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use support::{hooks, small_scenario};

/// No hostile run may take longer than this (a hang fails the test instead of blocking CI).
const BOUND: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Accepts and never says a word.
    Silent,
    /// Answers every request `200` with bytes that are not JSON.
    Garbage,
    /// `GET /messages` answers a JSON object, not a list of messages.
    WrongShape,
    /// `GET /messages` answers a chunked body that never ends.
    EndlessBody,
    /// A chat API whose Socket.IO server completes the handshake and then never pings.
    NeverPings,
    /// A chat API whose WebSocket upgrade is accepted at TCP level and never answered.
    NeverAnswersUpgrade,
    /// A chat API whose Socket.IO server sends the start of a frame and hangs up.
    TruncatedFrame,
}

/// A hostile server on 127.0.0.1; stops when dropped.
struct Hostile {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Hostile {
    async fn start(mode: Mode) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = token.cancelled() => return,
                };
                let Ok((stream, _)) = accepted else { return };
                let token = token.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(stream, mode) => {}
                        _ = token.cancelled() => {}
                        _ = tokio::time::sleep(BOUND) => {}
                    }
                });
            }
        });
        Hostile { addr, stop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(mut stream: TcpStream, mode: Mode) {
    if mode == Mode::Silent {
        // Keep the connection open and say nothing until the test ends.
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let mut peek = [0u8; 2048];
    let n = stream.peek(&mut peek).await.unwrap_or(0);
    let head = String::from_utf8_lossy(&peek[..n]).to_ascii_lowercase();
    if head.contains("upgrade: websocket") {
        return websocket(stream, mode).await;
    }
    // HTTP/1.1 keep-alive: one request after another.
    let mut buf = Vec::new();
    loop {
        let Some((path, method)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let done = respond(&mut stream, mode, &method, &path).await;
        if done {
            return;
        }
    }
}

/// Reads one request head (and its body, by Content-Length); `(path, method)`.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < end + length {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..end + length);
    let mut words = head.split_whitespace();
    let method = words.next()?.to_string();
    let path = words.next()?.to_string();
    Some((path, method))
}

async fn send(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.is_ok() && stream.write_all(body).await.is_ok()
}

/// Answers one request; true when the connection is done.
async fn respond(stream: &mut TcpStream, mode: Mode, method: &str, path: &str) -> bool {
    let json = "application/json";
    match (mode, method, path) {
        (Mode::Garbage, _, _) => !send(stream, "200 OK", json, b"\x00\xffnot json at all").await,
        (Mode::WrongShape, _, _) => !send(stream, "200 OK", json, br#"{"messages": "none"}"#).await,
        (Mode::EndlessBody, "GET", p) if p.starts_with("/messages") => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n[\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return true;
            }
            let item = r#"{"name":"x","message":"an endless list"},"#.repeat(1500);
            let chunk = format!("{:x}\r\n{item}\r\n", item.len());
            // Bounded: at most 1 GiB, far past the generator's 64 MiB limit.
            for _ in 0..(1usize << 30) / item.len() {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    break;
                }
            }
            true
        }
        // A plain chat API for the Socket.IO modes: an empty list, no SSE, POSTs accepted
        // (and never broadcast), a healthy /healthz.
        (_, "GET", p) if p.starts_with("/messages") => !send(stream, "200 OK", json, b"[]").await,
        (_, "POST", "/messages") => {
            !send(
                stream,
                "201 Created",
                json,
                br#"{"name":"x","message":"y"}"#,
            )
            .await
        }
        (_, "GET", "/healthz") => !send(stream, "200 OK", json, br#"{"status":"ok"}"#).await,
        _ => !send(stream, "404 Not Found", json, br#"{"error":"no"}"#).await,
    }
}

async fn websocket(stream: TcpStream, mode: Mode) {
    if mode == Mode::NeverAnswersUpgrade {
        let mut stream = stream;
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let open = r#"0{"sid":"hostile","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":100000}"#;
    if ws.send(Message::text(open)).await.is_err() {
        return;
    }
    while let Some(Ok(msg)) = ws.next().await {
        if msg.to_text().is_ok_and(|t| t.starts_with("40")) {
            if ws.send(Message::text(r#"40{"sid":"ns"}"#)).await.is_err() {
                return;
            }
            if mode == Mode::TruncatedFrame {
                // A text frame header announcing 1,000 bytes, 10 of them, then hang up.
                let mut raw = vec![0x81u8, 126, 0x03, 0xE8];
                raw.extend_from_slice(b"42[\"messag");
                let tcp = ws.get_mut();
                let _ = tcp.write_all(&raw).await;
                let _ = tcp.shutdown().await;
                return;
            }
        }
        // NeverPings: read whatever comes, answer nothing more.
    }
}

fn scenario(server: &Hostile) -> Scenario {
    Scenario {
        clients: NonZeroUsize::new(3).expect("nonzero"),
        senders: NonZeroUsize::new(1).expect("nonzero"),
        rate: 5.0,
        duration: Duration::from_secs(2),
        warmup: Duration::ZERO,
        drain: Duration::from_millis(500),
        ..small_scenario(Some(server.url()))
    }
}

async fn run(spec: &str, server: &Hostile) -> Result<RunResult, RunError> {
    let spec = spec.parse().expect("a valid strategy");
    tokio::time::timeout(BOUND, run_strategy(&scenario(server), &spec, &hooks()))
        .await
        .unwrap_or_else(|_| panic!("the run against a hostile server did not end within {BOUND:?}"))
}

async fn refused_with(mode: Mode, words: &[&str]) {
    let server = Hostile::start(mode).await;
    let err = run("poll@100ms", &server)
        .await
        .expect_err("a run against this server cannot start");
    let text = err.to_string();
    for w in words {
        assert!(text.contains(w), "{mode:?}: `{text}` does not say `{w}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_reported_unreachable_after_a_timeout() {
    refused_with(Mode::Silent, &["unreachable", "timed out"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_not_a_chat() {
    refused_with(
        Mode::Garbage,
        &["does not serve the chat API", "not a JSON message list"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_json_shape_is_not_a_chat() {
    refused_with(Mode::WrongShape, &["not a JSON message list"]).await;
}

/// Peak resident memory of this test process, bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// An endless body ends at the generator's 64 MiB answer limit: a clear error, and the
/// process's peak memory grows by a bounded amount (without the limit it grows until the
/// 5 s control timeout, by gigabytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_off_at_the_answer_limit() {
    let before = peak_rss();
    refused_with(Mode::EndlessBody, &["larger than 64 MiB"]).await;
    let grew = peak_rss().saturating_sub(before);
    assert!(grew < 400 << 20, "peak memory grew by {} MB", grew >> 20);
}

fn assert_bounded_failure(r: &RunResult, what: &str) {
    let e = &r.traffic.requests.errors;
    assert_eq!(r.outcome, Outcome::Completed, "{what}: {:?}", r.outcome);
    assert_eq!(r.clients.connected, 3, "{what}: {:?}", r.clients);
    assert!(r.delivery.missing > 0, "{what}: nothing was delivered");
    assert_eq!(r.delivery.missing, r.delivery.expected, "{what}");
    assert!(
        r.warnings
            .iter()
            .any(|w| matches!(w, loadgen::results::Warning::MessagesLost { .. })),
        "{what}: {:?}",
        r.warnings
    );
    assert!(!e.is_empty(), "{what}: no error counted");
}

/// A Socket.IO server that stops pinging is declared gone after its own ping interval plus
/// ping timeout (500 ms here), and the receivers reconnect, again and again, until the run ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socketio_server_that_never_pings_is_left_and_rejoined() {
    let server = Hostile::start(Mode::NeverPings).await;
    let r = run("socketio", &server).await.expect("the run starts");
    assert_bounded_failure(&r, "never pings");
    let timeouts = r
        .traffic
        .requests
        .errors
        .get("timeout")
        .copied()
        .unwrap_or(0);
    // Each of 3 receivers is silent-timed-out about every 750 ms over 2.5 s.
    assert!(timeouts >= 3, "{:?}", r.traffic.requests.errors);
    assert!(
        r.traffic.connections_opened >= 3 + 1 + 3,
        "receivers reconnected: {}",
        r.traffic.connections_opened
    );
}

/// A WebSocket upgrade that is never answered fails the receivers' connect within the request
/// deadline: the run fails, saying why, instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_that_is_never_answered_fails_the_connect() {
    let server = Hostile::start(Mode::NeverAnswersUpgrade).await;
    let r = run("socketio", &server).await.expect("the run starts");
    assert!(
        matches!(&r.outcome, Outcome::Failed { detail } if detail.contains("no receiver could connect")),
        "{:?}",
        r.outcome
    );
    assert_eq!(r.clients.failed, 3, "{:?}", r.clients);
    assert_eq!(
        r.traffic.requests.errors.get("timeout").copied(),
        Some(3),
        "{:?}",
        r.traffic.requests.errors
    );
}

/// A frame cut off mid-way (the server hangs up inside it) is an I/O error and a reconnect,
/// not a panic and not a half-read message delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_is_an_error_and_a_reconnect() {
    let server = Hostile::start(Mode::TruncatedFrame).await;
    let r = run("socketio", &server).await.expect("the run starts");
    assert_bounded_failure(&r, "truncated frame");
    assert_eq!(r.delivery.delivered, 0);
    assert_eq!(r.traffic.requests.errors.get("protocol"), None);
    assert!(
        r.traffic.connections_opened > 3 + 1,
        "receivers reconnected"
    );
}
