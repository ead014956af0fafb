//! SSE streams whose clients stop reading are ended once more than `--sse-max-buffered` bytes wait
//! for them (`pushpoll_sse_streams_dropped_total{reason="slow"}`), so they cost bounded memory,
//! while a client that reads gets every message.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::mem::{self, Peak};
use common::sse::SseReader;
use common::{DEADLINE, client, config, start_with, url, wait_for_metric};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

const STALLED: usize = 200;
const BATCHES: usize = 20;
const PER_BATCH: usize = 100;
/// Peak RSS growth allowed while 200 stalled streams fall 16.6 MB behind: the log itself keeps
/// 2,000 messages of 8 KB (16.6 MB; 27 MB of RSS growth with no stalled stream at all, in a debug
/// build), 200 streams × the 32 KiB default add 6.6 MB at most, and the allocator needs room.
/// Without the limit the growth was 272 MB (debug build).
const CAP: u64 = 80_000_000;
/// The log's messages: 2,000 of 8 KB.
const LOG_BYTES: u64 = (BATCHES * PER_BATCH * 8192) as u64;
/// What may stay above the baseline and the log once the stalled streams are gone: freed
/// memory the allocator keeps for reuse. Measured: about 15 MB (debug build).
const AFTER_MARGIN: u64 = 32_000_000;

/// Opens `GET /events` over raw TCP with a small receive buffer, reads the response head and the
/// `retry:` line, and then never reads again.
async fn stalled_client(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .expect("request");
    let mut seen = Vec::new();
    for _ in 0..100 {
        if seen.windows(5).any(|w| w == b"retry") {
            return stream;
        }
        let mut chunk = [0u8; 1024];
        let n = timeout(DEADLINE, stream.read(&mut chunk))
            .await
            .expect("the stream opens within the deadline")
            .expect("read");
        assert!(n > 0, "closed before the stream opened");
        seen.extend_from_slice(&chunk[..n]);
    }
    panic!("no `retry:` line: {}", String::from_utf8_lossy(&seen));
}

/// How many of the server's ends of connections from these client ports are still ESTABLISHED,
/// from `/proc/net/tcp`. A server that closed a connection leaves its end in FIN_WAIT (still
/// sending what the kernel had buffered) or gone; reading the client until EOF would wait for
/// that buffered data to trickle through a 4 KiB window.
fn still_established(server_port: u16, client_ports: &[u16]) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp (Linux)");
    let port = |address: &str| {
        let hex = address.rsplit(':').next().expect("ADDR:PORT");
        u16::from_str_radix(hex, 16).expect("hex port")
    };
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3
                && port(fields[1]) == server_port
                && client_ports.contains(&port(fields[2]))
                && fields[3] == "01"
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_sse_streams_are_ended_with_bounded_memory_and_a_reader_gets_everything() {
    let _alone = mem::alone().await;
    // A stalled stream is ended after one --sse-keepalive without progress: 1 s, not 15, here.
    let server = start_with(chat_server::Config {
        sse_keepalive: Duration::from_secs(1),
        ..config()
    })
    .await;
    let addr = server.addr();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(stalled_client(addr).await);
    }
    let mut reader = SseReader::open(client().get(url(addr, "/events"))).await;
    wait_for_metric(addr, "pushpoll_sse_streams", |v| v == (STALLED + 1) as f64).await;
    let ports: Vec<u16> = stalled
        .iter()
        .map(|s| s.local_addr().expect("local addr").port())
        .collect();
    assert_eq!(still_established(addr.port(), &ports), STALLED);

    let mut peak = Peak::start();
    let text = "x".repeat(8192 - 3);
    let mut next_id = 1u64;
    for _ in 0..BATCHES {
        for _ in 0..PER_BATCH {
            server.log().append("ann", &text).expect("stored");
        }
        // The reader keeps up; the stalled clients fall further behind with every batch.
        for _ in 0..PER_BATCH {
            let event = reader
                .next_event(DEADLINE)
                .await
                .expect("the reading client's stream stays open");
            assert_eq!(
                event.id,
                Some(next_id.to_string()),
                "in order, none missing"
            );
            next_id += 1;
        }
        peak.sample();
    }
    wait_for_metric(
        addr,
        "pushpoll_sse_streams_dropped_total{reason=\"slow\"}",
        |v| v == STALLED as f64,
    )
    .await;
    wait_for_metric(addr, "pushpoll_sse_streams", |v| v == 1.0).await;
    let growth = peak.growth();
    let after = mem::rss().saturating_sub(peak.baseline());
    eprintln!(
        "{STALLED} stalled SSE streams, {} messages of 8 KB: peak RSS {} above {}, {} after \
         they were ended",
        BATCHES * PER_BATCH,
        mem::mb(growth),
        mem::mb(peak.baseline()),
        mem::mb(after),
    );
    assert!(
        growth < CAP,
        "peak RSS grew by {}, over the cap of {}",
        mem::mb(growth),
        mem::mb(CAP)
    );
    // Ended means the connection is closed (and hyper's buffers freed), not just the stream.
    for _ in 0..100 {
        if still_established(addr.port(), &ports) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open = still_established(addr.port(), &ports);
    assert_eq!(open, 0, "the server kept {open} stalled connections open");
    // Memory given back once they are gone: what stays is the log's own 2,000 messages
    // (16.6 MB) and what the allocator keeps for reuse, within a stated margin.
    let after = mem::rss().saturating_sub(peak.baseline());
    assert!(
        after < LOG_BYTES + AFTER_MARGIN,
        "{} above the baseline after the stalled streams ended",
        mem::mb(after)
    );

    // The reader was never dropped: the next message reaches it too.
    server.log().append("ann", "one more").expect("stored");
    let event = reader.next_event(DEADLINE).await.expect("still open");
    assert_eq!(event.id, Some(next_id.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_catching_up_on_16_mb_of_history_is_not_taken_for_slow() {
    let _alone = mem::alone().await;
    let server = start_with(chat_server::Config {
        sse_keepalive: Duration::from_secs(1),
        ..config()
    })
    .await;
    let addr = server.addr();
    let text = "x".repeat(8192 - 3);
    let total = (BATCHES * PER_BATCH) as u64;
    for _ in 0..total {
        server.log().append("ann", &text).expect("stored");
    }
    // Far more than --sse-max-buffered is ready at once: the stream waits for its writes to go
    // out rather than ending.
    let mut reader = SseReader::open(client().get(url(addr, "/events?since=0"))).await;
    for id in 1..=total {
        let event = reader.next_event(DEADLINE).await.expect("stream open");
        assert_eq!(event.id, Some(id.to_string()));
    }
    assert_eq!(
        common::metric(addr, "pushpoll_sse_streams_dropped_total{reason=\"slow\"}").await,
        0.0
    );
}
