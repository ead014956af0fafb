//! A flood of malformed Socket.IO `message` events from one raw WebSocket: the WARN lines about
//! them stay within `--malformed-log-per-sec` (the rest are summed up in "suppressed K" lines, and
//! every event is still counted in the metric), `/healthz` answers during the flood, and a socket
//! over `--max-malformed-per-sec` is disconnected.
//!
//! The log is captured by a process-wide tracing subscriber, so the tests of this binary run one
//! at a time.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::mem;
use common::raw_ws::{Ending, Frame, RawWs, TEXT};
use common::{DEADLINE, WsClient, client, config, start_with, url, wait_for_metric};
use tokio::time::{Instant, timeout};

const MALFORMED: &[u8] = br#"42["message",1]"#;
const REJECTED: &str = "pushpoll_socket_events_rejected_total";

/// What the server logged about malformed events (counted as written; the text is not kept).
#[derive(Debug, Default, Clone)]
struct Tally {
    /// One line per logged event ("ignored a malformed …").
    event_lines: u64,
    /// "suppressed K …" lines, and the sum of their K.
    summary_lines: u64,
    suppressed: u64,
    /// Every byte the subscriber wrote (all lines, all levels captured).
    bytes: u64,
}

fn tally() -> &'static Mutex<Tally> {
    static TALLY: OnceLock<Mutex<Tally>> = OnceLock::new();
    TALLY.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(|| Tap)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        Mutex::new(Tally::default())
    })
}

/// Starts counting from zero; returns nothing of earlier tests.
fn reset_tally() {
    *tally().lock().expect("tally") = Tally::default();
}

fn read_tally() -> Tally {
    tally().lock().expect("tally").clone()
}

/// The subscriber's writer: the fmt layer writes each event as one line in one call.
struct Tap;

impl std::io::Write for Tap {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut t = tally().lock().expect("tally");
        t.bytes += buf.len() as u64;
        for line in text.lines() {
            if line.contains("ignored a malformed Socket.IO") {
                t.event_lines += 1;
            } else if let Some(rest) = line.split("suppressed ").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                t.summary_lines += 1;
                t.suppressed += digits.parse::<u64>().expect("suppressed K");
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends malformed events in batches of 1,000 until `stop` (or a cap of 5,000,000 events or one
/// minute, or a failed write); returns how many were sent and the socket.
async fn flood(addr: SocketAddr, stop: Arc<AtomicBool>) -> (u64, RawWs) {
    let (mut ws, _) = RawWs::join(addr).await;
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend_from_slice(&[0x80 | TEXT, 0x80 | MALFORMED.len() as u8, 0, 0, 0, 0]);
        batch.extend_from_slice(MALFORMED);
    }
    let end = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) && sent < 5_000_000 && Instant::now() < end {
        if ws.write(&batch).await.is_err() {
            break;
        }
        sent += 1000;
    }
    (sent, ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_flood_writes_a_bounded_log_and_healthz_still_answers() {
    let _alone = mem::alone().await;
    tally();
    reset_tally();
    let per_second = chat_server::Config::default().malformed_log_per_sec;
    let started = Instant::now();
    let server = start_with(chat_server::Config {
        max_malformed_per_sec: 0, // never disconnect: the whole flood reaches the log's budget
        ..config()
    })
    .await;
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = tokio::spawn(flood(addr, stop.clone()));

    // The server is busy rejecting the flood...
    wait_for_metric(addr, REJECTED, |v| v >= 20_000.0).await;
    // ...and answers /healthz meanwhile.
    for _ in 0..3 {
        let answer = timeout(DEADLINE, client().get(url(addr, "/healthz")).send())
            .await
            .expect("/healthz answers during the flood")
            .expect("GET /healthz");
        assert_eq!(answer.status(), 200);
    }
    assert!(
        !flooding.is_finished(),
        "the flood was still running when /healthz answered"
    );
    stop.store(true, Ordering::Relaxed);
    let (sent, _ws) = flooding.await.expect("flood task");
    let rejected = wait_for_metric(addr, REJECTED, |v| v == sent as f64).await;

    // One more event after a full window: its line brings the count of what was suppressed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut last = WsClient::connect(addr).await;
    last.send(std::str::from_utf8(MALFORMED).expect("ASCII"))
        .await;
    wait_for_metric(addr, REJECTED, |v| v == rejected + 1.0).await;
    let seconds = started.elapsed().as_secs() + 1;
    let log = read_tally();
    eprintln!(
        "{} malformed events in {seconds} s: {} lines about them, {} summary lines, \
         {} bytes of log",
        sent + 1,
        log.event_lines,
        log.summary_lines,
        log.bytes
    );
    assert!(
        log.event_lines <= u64::from(per_second) * (seconds + 1),
        "{} lines in {seconds} s, over {per_second} a second",
        log.event_lines
    );
    assert!(log.summary_lines <= seconds + 1, "{log:?}");
    assert_eq!(
        log.event_lines + log.suppressed,
        sent + 1,
        "every rejected event is either logged or counted in a summary line: {log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_sending_too_many_malformed_events_is_disconnected() {
    let _alone = mem::alone().await;
    tally();
    let limit = chat_server::Config::default().max_malformed_per_sec;
    let server = start_with(config()).await;
    let addr = server.addr();
    let (mut ws, _) = RawWs::join(addr).await;
    let mut burst = Vec::new();
    for _ in 0..(limit * 50) {
        burst.extend_from_slice(&[0x80 | TEXT, 0x80 | MALFORMED.len() as u8, 0, 0, 0, 0]);
        burst.extend_from_slice(MALFORMED);
    }
    // The server may cut us off before it has read all of it.
    ws.write(&burst).await.ok();
    let mut disconnect_packet = false;
    let mut ending = None;
    for _ in 0..20_000 {
        match ws.next_frame().await {
            Frame::Text(text) if text == "41" => disconnect_packet = true,
            // Engine.IO close packets ("1"), one per event that found its socket gone.
            Frame::Text(_) => {}
            Frame::Closed(end) => {
                ending = Some(end);
                break;
            }
        }
    }
    assert!(disconnect_packet, "a Socket.IO disconnect (41) came first");
    // Our next event, for a namespace we were disconnected from, ends the engine.io session.
    assert!(
        matches!(
            ending,
            Some(Ending::Close(_) | Ending::Eof | Ending::Error(_))
        ),
        "the connection ended"
    );
    wait_for_metric(addr, "pushpoll_socket_malformed_disconnects_total", |v| {
        v == 1.0
    })
    .await;
    wait_for_metric(
        addr,
        "pushpoll_sockets_connected{transport=\"websocket\"}",
        |v| v == 0.0,
    )
    .await;

    // Another socket is untouched: its message is stored and broadcast.
    let mut good = WsClient::connect(addr).await;
    good.emit_message(&serde_json::json!({"name": "ann", "message": "fine"}))
        .await;
    assert_eq!(good.next_message().await["message"], "fine");
}
