//! The Socket.IO door: namespace `/`, event `message` both ways.
//!
//! One broadcaster task follows the log in id order and queues each message to every socket.
//! A socket whose send queue (`--socket-buffer`) is full is counted and then disconnected by the
//! server: it gets no later messages (no silent gap), and its client sees the disconnect and can
//! resync with `GET /messages?since=ID`. The disconnect itself needs one free slot in the queue,
//! so it is retried on each broadcast until it goes through (or engine.io's ping timeout drops
//! a client that stopped reading).
//!
//! Clients may send at most the advertised `maxPayload` ([`max_payload`]) per engine.io request or
//! WebSocket message, on either transport.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use serde_json::value::RawValue;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::Sid;
use socketioxide::{ParserError, SendError, SocketError, SocketIo};
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::config::Config;
use crate::input::NewMessage;
use crate::log::MessageLog;
use crate::malformed::{MalformedPolicy, Strikes};
use crate::metrics::Metrics;

/// Bytes of each WebSocket's read buffer (see [`build`]).
const WS_READ_BUFFER: usize = 512;

/// Messages taken from the log per broadcast step.
const BATCH: usize = 256;

/// What Socket.IO handlers need.
#[derive(Clone)]
struct SocketState {
    log: MessageLog,
    metrics: Metrics,
    malformed: Arc<MalformedPolicy>,
    /// With `--redis`, messages go to the shared log (and come back through the follower).
    broker: Option<Broker>,
}

/// Builds the Socket.IO routes (`/socket.io` and `/socket.io/` only, so `/socket.io/socket.io.js`
/// stays an ordinary route) and the handle; the caller merges the routes and runs [`broadcast`].
pub fn build<S: Clone + Send + Sync + 'static>(
    config: &Config,
    log: MessageLog,
    metrics: Metrics,
    broker: Option<Broker>,
) -> (Router<S>, SocketIo) {
    let max_payload = max_payload(config);
    let malformed = Arc::new(MalformedPolicy::new(config, &metrics));
    let (service, io) = SocketIo::builder()
        .max_buffer_size(config.socket_buffer)
        .max_payload(u64::try_from(max_payload).unwrap_or(u64::MAX))
        // engineioxide applies `max_payload` to polling requests only; its WebSocket limits
        // default to 16 MiB frames and 64 MiB messages. Held to the advertised maxPayload, a
        // frame announcing more is refused from its header, before its payload is read, and a
        // fragmented message as soon as it grows past the limit. engineioxide then ends the
        // session and sends a close frame without a status code (clients see 1005, not 1009):
        // it does not turn tungstenite's size error into a close code, and offers no hook to.
        .ws_max_frame_size(max_payload)
        .ws_max_message_size(max_payload)
        // The WebSocket read buffer every socket allocates up front (engineioxide's default is
        // 4 KiB). Clients send pongs and small events; a larger frame grows it as it needs.
        .ws_read_buffer_size(WS_READ_BUFFER)
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .with_state(SocketState {
            log,
            metrics,
            malformed,
            broker,
        })
        .build_svc();
    io.ns("/", connected.with(register_handlers));
    let routes = Router::new()
        .route_service("/socket.io", service.clone())
        .route_service("/socket.io/", service)
        .layer(axum::middleware::from_fn(
            crate::engineio_errors::numeric_codes,
        ))
        .layer(axum::middleware::from_fn(crate::own_head::own_head));
    (routes, io)
}

/// The largest engine.io payload a client may send, advertised as `maxPayload` in the open
/// packet and enforced on both transports: room for a `--max-message-bytes` message with JSON
/// escaping and framing, and never below engine.io's default of 100,000 bytes.
pub fn max_payload(config: &Config) -> usize {
    config.max_message_bytes.saturating_mul(4).max(100_000)
}

/// Registers a new socket's `message` handler. This is a connect *middleware* because
/// socketioxide awaits middlewares before it sends the connect ack, while it spawns the connect
/// handler after: a handler registered there could miss an event the client sent right after the
/// ack (socketioxide drops events that have no handler, silently).
async fn register_handlers(
    socket: SocketRef,
    State(st): State<SocketState>,
) -> Result<(), Infallible> {
    let strikes = st.malformed.strikes();
    socket.on(
        "message",
        move |socket: SocketRef,
              State(st): State<SocketState>,
              TryData(payload): TryData<serde_json::Value>| {
            let strikes = strikes.clone();
            async move { on_message(&socket, &st, strikes.as_deref(), payload) }
        },
    );
    Ok(())
}

/// Nothing left to do once connected: [`register_handlers`] did it before the ack.
async fn connected() {}

/// A client's `message` event: stored like a POST; malformed payloads are ignored, counted and
/// maybe logged, and too many of them disconnect the socket ([`MalformedPolicy`]).
fn on_message(
    socket: &SocketRef,
    st: &SocketState,
    strikes: Option<&Strikes>,
    payload: Result<serde_json::Value, ParserError>,
) {
    let new = payload
        .map_err(|e| e.to_string())
        .and_then(|value| NewMessage::from_json(value).map_err(|e| e.to_string()));
    let stored = match (new, &st.broker) {
        (Err(reason), _) => Err(reason),
        (Ok(new), None) => st
            .log
            .append(&new.name, &new.message)
            .map(|_| st.metrics.messages_stored_socketio.inc())
            .map_err(|e| e.to_string()),
        // Counted as stored once Redis has it.
        (Ok(new), Some(broker)) => st
            .log
            .check(&new.name, &new.message)
            .map(|()| broker.submit(new.name, new.message))
            .map_err(|e| e.to_string()),
    };
    if let Err(reason) = stored {
        st.malformed.reject(socket, strikes, &reason);
    }
}

/// Follows the log and emits every message, in id order, to every connected socket.
pub async fn broadcast(
    io: SocketIo,
    log: MessageLog,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut latest = log.subscribe();
    let mut cursor = *latest.borrow_and_update();
    let mut overflowed = HashSet::new();
    loop {
        tokio::select! {
            changed = latest.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
        loop {
            latest.borrow_and_update();
            let page = log.since(cursor, BATCH);
            let Some(last) = page.last_id() else { break };
            if page.missed > 0 {
                tracing::error!(
                    missed = page.missed,
                    "the Socket.IO broadcaster fell behind the log; raise --capacity"
                );
            }
            let sockets = io.sockets();
            retry_disconnects(&sockets, &mut overflowed, &metrics);
            for message in &page.messages {
                let raw: &RawValue = serde_json::from_str(message.json_str())
                    .expect("the log only holds valid JSON");
                emit_to_all(&sockets, raw, &mut overflowed, &metrics).await;
                metrics.broadcasts.inc();
            }
            cursor = last;
        }
    }
}

/// Sockets served between yields, so one broadcast to thousands of sockets does not hold a
/// worker thread for tens of milliseconds while requests wait.
const SOCKETS_PER_YIELD: usize = 1024;

async fn emit_to_all(
    sockets: &[SocketRef],
    raw: &RawValue,
    overflowed: &mut HashSet<Sid>,
    metrics: &Metrics,
) {
    for (i, socket) in sockets.iter().enumerate() {
        if i > 0 && i % SOCKETS_PER_YIELD == 0 {
            tokio::task::yield_now().await;
        }
        if overflowed.contains(&socket.id) {
            continue;
        }
        match socket.emit("message", raw) {
            Ok(()) => metrics.socket_messages_sent.inc(),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                metrics.socket_send_overflows.inc();
                tracing::debug!(sid = %socket.id, "send queue full; disconnecting the socket");
                overflowed.insert(socket.id);
                try_disconnect(socket, overflowed, metrics);
            }
            // Disconnected while we were broadcasting: it has no queue to fill any more.
            Err(SendError::Socket(SocketError::Closed)) => {}
            Err(SendError::Serialize(e)) => {
                tracing::error!("could not encode a stored message for Socket.IO: {e}");
            }
        }
    }
}

/// Disconnects overflowed sockets whose queue has room again; forgets those already gone.
fn retry_disconnects(sockets: &[SocketRef], overflowed: &mut HashSet<Sid>, metrics: &Metrics) {
    if overflowed.is_empty() {
        return;
    }
    let present: HashSet<Sid> = sockets.iter().map(|s| s.id).collect();
    overflowed.retain(|sid| present.contains(sid));
    let stuck: Vec<&SocketRef> = sockets
        .iter()
        .filter(|s| overflowed.contains(&s.id))
        .collect();
    for socket in stuck {
        try_disconnect(socket, overflowed, metrics);
    }
}

fn try_disconnect(socket: &SocketRef, overflowed: &mut HashSet<Sid>, metrics: &Metrics) {
    match socket.clone().disconnect() {
        Ok(()) => {
            metrics.socket_overflow_disconnects.inc();
            overflowed.remove(&socket.id);
        }
        // Still full: retried at the next broadcast.
        Err(SocketError::InternalChannelFull) => {}
        Err(SocketError::Closed) => {
            overflowed.remove(&socket.id);
        }
    }
}
