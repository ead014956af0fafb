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

/// Chat frames are small (a probe event is ~200 bytes); a 1 KiB read buffer keeps each idle
/// client cheap, and an eager write (no write buffering) sends pongs at once. tungstenite zeroes
/// the free part of its read buffer before every read: with 4 KiB that memset was 0.9 % of the
/// generator's CPU at 4,000 clients, 0.5 % with 1 KiB (the RSS did not measurably change). A
/// larger frame is read in several reads (its full length is reserved once its header is known).
const READ_BUFFER_BYTES: usize = 1024;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
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
    // The handshake and the catch-up run once per session: boxed, so their states do not size
    // every idle client's task.
    let mut ws = match Box::pin(open(rx)).await {
        Ok(ws) => ws,
        Err(kind) => return End::Lost(kind),
    };
    // The namespace connect must be acknowledged within the request deadline.
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    // As the official client does: a server silent for longer than its own ping interval plus
    // ping timeout (from the open packet) is gone, even if TCP says nothing.
    let mut heartbeat: Option<Duration> = None;
    let mut last_heard = Instant::now();
    // One stop waiter and one timer for the whole session, not a new pair per frame: each frame
    // used to register (and drop) a waiter on the run's shared stop token and a timer entry.
    // The timer is moved only when it fires early (the server was heard since it was set) or
    // when the heartbeat becomes known, so each deadline still ends the session when it passes.
    let stop = rx.ctx.stop_receivers.clone();
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    loop {
        let frame = tokio::select! {
            f = ws.next() => f,
            _ = &mut stopped => return End::Stopped,
            _ = &mut timer => {
                let now = Instant::now();
                let expired = |at: Option<Instant>| at.is_some_and(|at| at <= now);
                let connect_by = rx.is_connecting().then_some(deadline);
                let silent_after = heartbeat.map(|h| last_heard + h);
                if expired(connect_by) || expired(silent_after) {
                    return End::Lost(ErrorKind::Timeout);
                }
                timer.as_mut().reset(next_check(connect_by, silent_after));
                continue;
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
                    let connect_by = rx.is_connecting().then_some(deadline);
                    let silent_after = heartbeat.map(|h| last_heard + h);
                    timer.as_mut().reset(next_check(connect_by, silent_after));
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
                Box::pin(catch_up_if_needed(rx, catchup_from)).await;
            }
            Step::Closed => return End::Lost(ErrorKind::Closed),
            Step::Refused => return End::Lost(ErrorKind::Protocol),
            Step::Nothing | Step::Delivered => {}
        }
    }
}

/// When the session's timer must next look: the earlier of the deadlines in force (a far
/// instant when none is: a connected session whose server sent no heartbeat).
fn next_check(connect_by: Option<Instant>, silent_after: Option<Instant>) -> Instant {
    match (connect_by, silent_after) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => Instant::now() + Duration::from_secs(24 * 3600),
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
