//! The WebSocket transport enforces the `maxPayload` the server advertises in its engine.io open
//! packet, as the polling transport does: a frame announcing more, or a fragmented message growing
//! past it, ends the connection without the server buffering the rest.

mod common;

use std::net::SocketAddr;

use common::mem::{self, Peak};
use common::raw_ws::{CONTINUATION, Ending, RawWs, TEXT};
use common::{start, wait_for_metric};

const WS_SOCKETS: &str = "pushpoll_sockets_connected{transport=\"websocket\"}";

/// `42["message","xxx…"]`, exactly `size` bytes: a well-formed packet with a malformed payload.
fn malformed_event(size: usize) -> Vec<u8> {
    let mut packet = b"42[\"message\",\"".to_vec();
    packet.resize(size - 2, b'x');
    packet.extend_from_slice(b"\"]");
    packet
}

/// The close is either a close frame or the TCP connection ending; never a normal close (1000).
fn assert_closed_for_size(ending: &Ending) {
    assert!(
        !matches!(ending, Ending::Close(Some(code)) if *code != 1009),
        "closed with an unexpected code: {ending:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_max_payload_closes_the_connection_before_its_payload_arrives() {
    let _alone = mem::alone().await;
    let server = start().await;
    let addr = server.addr();
    let (mut ws, open) = RawWs::join(addr).await;
    let max = open["maxPayload"].as_u64().expect("maxPayload advertised");
    assert_eq!(
        max, 100_000,
        "the default --max-message-bytes advertises 100,000"
    );

    // A frame of exactly maxPayload bytes is read (and, not being a valid message, ignored)...
    let limit = usize::try_from(max).expect("fits");
    ws.send_frame(true, TEXT, &malformed_event(limit))
        .await
        .expect("a frame of maxPayload bytes is accepted");
    wait_for_metric(addr, "pushpoll_socket_events_rejected_total", |v| v == 1.0).await;
    // ...and the socket keeps working.
    ws.send_frame(
        true,
        TEXT,
        br#"42["message",{"name":"a","message":"still here"}]"#,
    )
    .await
    .expect("send");
    let echo = ws.next_text().await.expect("the broadcast of our message");
    assert!(echo.contains("still here"), "{echo}");

    // One byte more is announced, 1 KiB of it sent: the server ends the connection without
    // waiting for the other 99 KB, i.e. it never buffers an oversize frame.
    ws.send_header(true, TEXT, max + 1).await.expect("send");
    ws.write(&[b'x'; 1024]).await.expect("send");
    let ending = ws.ending().await;
    assert_closed_for_size(&ending);
    eprintln!("frame over maxPayload: the client saw {ending:?}");
    wait_for_metric(addr, WS_SOCKETS, |v| v == 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_message_over_max_payload_closes_the_connection() {
    let _alone = mem::alone().await;
    let server = start().await;
    let addr = server.addr();
    let (mut ws, open) = RawWs::join(addr).await;
    let max = open["maxPayload"].as_u64().expect("maxPayload advertised");
    let fragment = [b'x'; 16 * 1024];
    // Never finished: only the size can end it. Writes may fail once the server has closed.
    let mut sent = 0u64;
    let mut opcode = TEXT;
    while sent <= max + fragment.len() as u64 {
        if ws.send_frame(false, opcode, &fragment).await.is_err() {
            break;
        }
        opcode = CONTINUATION;
        sent += fragment.len() as u64;
    }
    let ending = ws.ending().await;
    assert_closed_for_size(&ending);
    eprintln!("fragmented message over maxPayload: the client saw {ending:?}");
    wait_for_metric(addr, WS_SOCKETS, |v| v == 0.0).await;
}

/// Sends an unfinished text message of up to `total` bytes in 64 KiB fragments; returns the bytes
/// written before the server cut the connection, and how it ended (None: everything was written).
async fn unfinished_message(addr: SocketAddr, total: u64) -> (u64, Option<Ending>) {
    let (mut ws, _) = RawWs::join(addr).await;
    let fragment = vec![b'x'; 64 * 1024];
    let mut sent = 0u64;
    let mut opcode = TEXT;
    while sent < total {
        if ws.send_frame(false, opcode, &fragment).await.is_err() {
            return (sent, Some(ws.ending().await));
        }
        opcode = CONTINUATION;
        sent += fragment.len() as u64;
    }
    (sent, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_unfinished_60_mb_messages_are_cut_off_and_cost_little_memory() {
    const CONNECTIONS: usize = 10;
    const TOTAL: u64 = 60_000_000;
    const CAP: u64 = 50_000_000;
    let _alone = mem::alone().await;
    let server = start().await;
    let addr = server.addr();
    let mut peak = Peak::start();
    let senders: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(unfinished_message(addr, TOTAL)))
        .collect();
    let mut outcomes = Vec::new();
    for sender in senders {
        outcomes.push(sender.await.expect("sender task"));
    }
    let growth = peak.growth();
    eprintln!(
        "{CONNECTIONS} unfinished messages of {}: peak RSS {} above {}; sent before the cut: {:?}; \
         endings: {:?}",
        mem::mb(TOTAL),
        mem::mb(growth),
        mem::mb(peak.baseline()),
        outcomes.iter().map(|(sent, _)| *sent).collect::<Vec<_>>(),
        outcomes
            .iter()
            .map(|(_, ending)| ending)
            .collect::<Vec<_>>(),
    );
    assert!(
        growth < CAP,
        "peak RSS grew by {}, over the cap of {}",
        mem::mb(growth),
        mem::mb(CAP)
    );
    for (sent, ending) in &outcomes {
        let ending = ending
            .as_ref()
            .unwrap_or_else(|| panic!("the server read all {sent} bytes of an unfinished message"));
        assert_closed_for_size(ending);
    }
    wait_for_metric(addr, WS_SOCKETS, |v| v == 0.0).await;
}
