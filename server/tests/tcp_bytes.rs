//! `pushpoll_tcp_bytes_*_total` count every byte on the wire, exactly as the client sees it:
//! HTTP headers and bodies, and WebSocket handshakes and frames.

mod common;

use std::net::SocketAddr;

use chat_server::net::counted;
use futures_util::{SinkExt, StreamExt};
use prometheus::IntCounter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

struct Counts {
    received: u64,
    sent: u64,
}

/// One `GET /metrics` over its own connection; returns the server's counters and what this
/// exchange itself put on the wire (request bytes, response bytes).
async fn scrape(addr: SocketAddr) -> (Counts, u64, u64) {
    let request = format!("GET /metrics HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let counts = Counts {
        received: common::metric_in(&text, "pushpoll_tcp_bytes_received_total").expect("received")
            as u64,
        sent: common::metric_in(&text, "pushpoll_tcp_bytes_sent_total").expect("sent") as u64,
    };
    (counts, request.len() as u64, response.len() as u64)
}

#[tokio::test]
async fn byte_counters_match_what_the_client_saw() {
    let server = common::start().await;
    let addr = server.addr();
    let (before, _, first_response) = scrape(addr).await;

    // An HTTP POST and a WebSocket session, counted on the client side.
    let up = IntCounter::new("up", "client bytes sent").expect("counter");
    let down = IntCounter::new("down", "client bytes received").expect("counter");
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut http = counted(tcp, down.clone(), up.clone());
    let body = r#"{"name":"ann","message":"count me"}"#;
    let request = format!(
        "POST /messages HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    http.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    http.read_to_end(&mut response).await.expect("read");
    assert!(response.starts_with(b"HTTP/1.1 201"));

    let tcp = TcpStream::connect(addr).await.expect("connect");
    let counted = counted(tcp, down.clone(), up.clone());
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
        counted,
    )
    .await
    .expect("WebSocket handshake");
    let open = ws.next().await.expect("frame").expect("open packet");
    assert!(open.to_text().is_ok_and(|t| t.starts_with('0')));
    ws.send(Message::text("40")).await.expect("send");
    // engineioxide pings right after the handshake; answer pings until the connect packet comes.
    loop {
        let frame = ws.next().await.expect("frame").expect("a packet");
        match frame.to_text() {
            Ok("2") => ws.send(Message::text("3")).await.expect("pong"),
            Ok(t) if t.starts_with("40") => break,
            _ => panic!("expected the connect packet, got {frame:?}"),
        }
    }
    ws.close(None).await.expect("close");
    while let Some(Ok(_)) = ws.next().await {}

    let (after, second_request, _) = scrape(addr).await;
    assert_eq!(
        after.received - before.received,
        up.get() + second_request,
        "bytes received by the server"
    );
    assert_eq!(
        after.sent - before.sent,
        down.get() + first_response,
        "bytes sent by the server"
    );
}
