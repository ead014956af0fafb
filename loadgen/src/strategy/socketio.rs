//! `socketio`: Socket.IO v5 over an Engine.IO v4 WebSocket, on a counted TCP stream with small
//! buffers (a few KiB per client, so 10,000 clients fit in one process).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::REQUEST_TIMEOUT;
use super::sio::{End, Step, after_session, catch_up_if_needed, on_packet};
use crate::context::Receiver;
use crate::counters::ErrorKind;
use crate::net::{ClientStream, connect_tcp};
use pushpoll_wire::engineio::{EioPacket, decode_packet, parse_open};

type Ws = WebSocketStream<ClientStream>;

/// Chat frames are small; a 4 KiB read buffer keeps each idle client cheap, and an eager write
/// (no write buffering) sends pongs at once.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

pub async fn run(mut rx: Receiver, catchup_from: Option<u64>) {
    loop {
        let end = session(&mut rx, catchup_from).await;
        if !after_session(&mut rx, end).await {
            return;
        }
    }
}

async fn session(rx: &mut Receiver, catchup_from: Option<u64>) -> End {
    let mut ws = match open(rx).await {
        Ok(ws) => ws,
        Err(kind) => return End::Lost(kind),
    };
    // The namespace connect must be acknowledged within the request deadline.
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    // As the official client does: a server silent for longer than its own ping interval plus
    // ping timeout (from the open packet) is gone, even if TCP says nothing.
    let mut heartbeat: Option<Duration> = None;
    let mut last_heard = Instant::now();
    loop {
        let silent_after = heartbeat.map(|h| last_heard + h);
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = rx.stopped().cancelled() => return End::Stopped,
            _ = tokio::time::sleep_until(deadline), if rx.is_connecting() => {
                return End::Lost(ErrorKind::Timeout);
            }
            _ = tokio::time::sleep_until(silent_after.unwrap_or(deadline)), if silent_after.is_some() => {
                return End::Lost(ErrorKind::Timeout);
            }
        };
        last_heard = Instant::now();
        let text = match frame {
            None => return End::Lost(ErrorKind::Closed),
            Some(Err(_)) => return End::Lost(ErrorKind::Io),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) => return End::Lost(ErrorKind::Closed),
            Some(Ok(_)) => continue,
        };
        let step = match decode_packet(text.as_str()) {
            Ok(packet) => {
                if let EioPacket::Open(json) = packet {
                    heartbeat = parse_open(json)
                        .ok()
                        .map(|o| Duration::from_millis(o.ping_interval + o.ping_timeout));
                }
                on_packet(packet, rx, last_heard)
            }
            Err(_) => {
                rx.error(ErrorKind::Protocol);
                continue;
            }
        };
        match step {
            Step::Reply(reply) => {
                if ws.send(Message::text(reply)).await.is_err() {
                    return End::Lost(ErrorKind::Io);
                }
            }
            Step::Connected => {
                rx.connected();
                catch_up_if_needed(rx, catchup_from).await;
            }
            Step::Closed => return End::Lost(ErrorKind::Closed),
            Step::Refused => return End::Lost(ErrorKind::Protocol),
            Step::Nothing | Step::Delivered => {}
        }
    }
}

async fn open(rx: &mut Receiver) -> Result<Ws, ErrorKind> {
    let target = rx.target();
    let tcp = connect_tcp(&target, &rx.wire())
        .await
        .map_err(|e| e.kind())?;
    let host = target.host.to_str().map_err(|_| ErrorKind::Protocol)?;
    // The scheme only shapes the request: the stream is already TLS for a wss:// target.
    let url = format!("ws://{host}/socket.io/?EIO=4&transport=websocket");
    let mut request = url.into_client_request().map_err(|_| ErrorKind::Protocol)?;
    target.access.add_headers(request.headers_mut());
    rx.request();
    let handshake = tokio_tungstenite::client_async_with_config(request, tcp, Some(ws_config()));
    match tokio::time::timeout(REQUEST_TIMEOUT, handshake).await {
        Err(_) => Err(ErrorKind::Timeout),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            target.access.guard.observe(resp.status());
            Err(ErrorKind::Connect)
        }
        Ok(Err(_)) => Err(ErrorKind::Connect),
        Ok(Ok((ws, _response))) => Ok(ws),
    }
}
