//! The Socket.IO client logic both transports share: what to do with one Engine.IO packet.

use tokio::time::Instant;

use super::REQUEST_TIMEOUT;
use super::messages::{ListCursor, deliver_item, deliver_profiled};
use crate::context::Receiver;
use crate::counters::ErrorKind;
use crate::net::HttpConn;
use crate::recorder::Via;
use pushpoll_wire::engineio::{
    EioPacket, SioPacket, decode_sio, encode_sio_connect, split_event_borrowed,
};

/// The chat's Socket.IO event name.
const MESSAGE_EVENT: &str = "message";

/// What the transport must do after one packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Send this packet back (a pong, or the namespace connect after the handshake).
    Reply(String),
    /// The namespace connect was acknowledged.
    Connected,
    /// A chat message was delivered.
    Delivered,
    /// The server closed the session.
    Closed,
    /// The server refused the namespace connect.
    Refused,
}

pub fn on_packet(packet: EioPacket<'_>, rx: &mut Receiver, now: Instant) -> Step {
    match packet {
        EioPacket::Open(_) => {
            let mut out = String::with_capacity(2);
            let nsp = rx
                .ctx
                .target
                .custom_profile()
                .and_then(|p| p.socketio.as_ref())
                .map_or("/", |d| d.namespace.as_str());
            encode_sio_connect(nsp, &mut out);
            // The `auth` payload (`--socketio-auth`) follows the namespace: `40{"token":…}`.
            if let Some(auth) = &rx.ctx.target.access.socketio_auth {
                out.push_str(auth);
            }
            Step::Reply(out)
        }
        EioPacket::Ping(data) => Step::Reply(format!("3{data}")),
        EioPacket::Message(m) => on_message(m, rx, now),
        EioPacket::Close => Step::Closed,
        EioPacket::Pong(_) | EioPacket::Upgrade | EioPacket::Noop => Step::Nothing,
    }
}

fn on_message(text: &str, rx: &mut Receiver, now: Instant) -> Step {
    match decode_sio(text) {
        Ok(SioPacket::Connect { .. }) => Step::Connected,
        Ok(SioPacket::ConnectError { .. }) => Step::Refused,
        Ok(SioPacket::Disconnect { .. }) => Step::Closed,
        Ok(SioPacket::Event { nsp, args, .. }) => match split_event_borrowed(args) {
            Ok((name, arg)) if rx.ctx.target.custom_profile().is_some() => {
                on_profiled_event(nsp, &name, arg, rx, now)
            }
            Ok((name, arg)) if name == MESSAGE_EVENT => match deliver_item(arg, rx, now) {
                Ok(_) => Step::Delivered,
                Err(_) => protocol_error(rx),
            },
            Ok(_) => Step::Nothing,
            Err(_) => protocol_error(rx),
        },
        Ok(SioPacket::Ack { .. }) => Step::Nothing,
        Err(_) => protocol_error(rx),
    }
}

/// An event from a profiled target: delivered when its namespace and name are the profile's.
fn on_profiled_event(nsp: &str, name: &str, arg: &str, rx: &mut Receiver, now: Instant) -> Step {
    let target = rx.ctx.target.clone();
    let Some(door) = target.custom_profile().and_then(|p| p.socketio.as_ref()) else {
        return protocol_error(rx);
    };
    if nsp != door.namespace || name != door.event {
        return Step::Nothing;
    }
    match deliver_profiled(arg, &door.text, door.id.as_deref(), rx, now) {
        Ok(_) => Step::Delivered,
        Err(_) => protocol_error(rx),
    }
}

fn protocol_error(rx: &Receiver) -> Step {
    rx.error(ErrorKind::Protocol);
    Step::Nothing
}

/// How a Socket.IO session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Told to stop.
    Stopped,
    /// Lost, for this reason; the receiver reconnects (or fails, if it never connected).
    Lost(ErrorKind),
}

/// After a session ended: false when the receiver is done (stopped, or it never connected);
/// true after the reconnect pause (a fresh session follows, as the official client does).
pub async fn after_session(rx: &mut Receiver, end: End) -> bool {
    match end {
        End::Stopped => return false,
        End::Lost(kind) if rx.is_connecting() => {
            rx.connect_failed(kind);
            return false;
        }
        End::Lost(kind) => rx.error(kind),
    }
    super::pause(super::RECONNECT_BACKOFF, rx.stopped()).await
}

/// After a reconnect, fetches what the break may have missed with `GET /messages?since=` (the
/// highest id the receiver saw, else `start_id`), as the chat page does. `start_id` is `None`
/// when the target has no cursors: nothing can be caught up, the loss stays visible.
pub async fn catch_up_if_needed(rx: &mut Receiver, start_id: Option<u64>) {
    if !rx.take_pending_catchup() {
        return;
    }
    let Some(start_id) = start_id else {
        return;
    };
    let mut cursor = ListCursor {
        last_id: rx.last_id().unwrap_or(start_id).max(start_id),
        seen_len: 0,
    };
    let mut conn = HttpConn::new(rx.target(), rx.wire());
    // Twice at most: a cursor ahead of a restarted server's log is read again from the start.
    for _ in 0..2 {
        rx.request();
        let path = match rx.ctx.target.custom_profile() {
            None => format!("/messages?since={}", cursor.last_id),
            Some(p) => match &p.poll {
                Some(door) => door.path(Some(cursor.last_id)),
                None => return,
            },
        };
        let answer = tokio::select! {
            a = conn.get_list(&path, REQUEST_TIMEOUT) => a,
            _ = rx.stopped().cancelled() => return,
        };
        match answer {
            Ok(answer) if cursor.restart_if_ahead(answer.latest_id) => rx.log_restarted(),
            Ok(answer) => {
                if cursor
                    .apply_via(&answer.body, rx, Instant::now(), Via::Catchup)
                    .is_err()
                {
                    rx.error(ErrorKind::Protocol);
                }
                return;
            }
            Err(e) => return rx.error(e.kind()),
        }
    }
}
