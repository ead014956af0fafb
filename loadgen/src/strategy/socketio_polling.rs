//! `socketio-polling`: Socket.IO v5 over Engine.IO v4 HTTP long-polling only. One keep-alive
//! connection per client: a GET waits for packets, pongs and the namespace connect go up in a
//! POST between GETs (several packets per body, joined by 0x1E).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, header};
use http_body_util::Full;
use tokio::time::Instant;

use super::REQUEST_TIMEOUT;
use super::sio::{End, Step, after_session, catch_up_if_needed, on_packet};
use crate::context::Receiver;
use crate::counters::ErrorKind;
use crate::net::{HttpConn, HttpError, collect_body};
use pushpoll_wire::engineio::{EioPacket, decode_payload, parse_open};

const PATH: &str = "/socket.io/?EIO=4&transport=polling";
/// Separator of packets in one polling body.
use pushpoll_wire::engineio::RECORD_SEPARATOR;

pub async fn run(mut rx: Receiver, catchup_from: Option<u64>) {
    let mut conn = HttpConn::new(rx.target(), rx.wire());
    loop {
        let end = session(&mut rx, &mut conn, catchup_from).await;
        if !after_session(&mut rx, end).await {
            return;
        }
    }
}

/// One Engine.IO session.
struct Session {
    path: String,
    /// A GET may be held by the server this long (ping interval + ping timeout), plus slack.
    get_timeout: Duration,
}

async fn session(rx: &mut Receiver, conn: &mut HttpConn, catchup_from: Option<u64>) -> End {
    let (session, replies) = match handshake(rx, conn).await {
        Ok(ok) => ok,
        Err(kind) => return End::Lost(kind),
    };
    let mut replies = replies;
    let stop = rx.ctx.stop_receivers.clone();
    // A reconnect's namespace connect may come with the handshake: catch up before waiting.
    catch_up_if_needed(rx, catchup_from).await;
    // One waiter on the run's shared stop token for the whole session, not one per GET.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        if !replies.is_empty()
            && let Err(kind) = post(rx, conn, &session.path, std::mem::take(&mut replies)).await
        {
            return End::Lost(kind);
        }
        let body = tokio::select! {
            b = get(rx, conn, &session.path, session.get_timeout) => b,
            _ = &mut stopped => return End::Stopped,
        };
        let body = match body {
            Ok(body) => body,
            Err(e) => return End::Lost(e.kind()),
        };
        match handle_payload(&body, rx, &mut replies) {
            Ok(0) => rx.empty_poll(),
            Ok(_) => {}
            Err(kind) => return End::Lost(kind),
        }
        catch_up_if_needed(rx, catchup_from).await;
    }
}

/// The opening GET: the server's open packet (and maybe more); answers the namespace connect.
async fn handshake(rx: &mut Receiver, conn: &mut HttpConn) -> Result<(Session, String), ErrorKind> {
    let body = get(rx, conn, PATH, REQUEST_TIMEOUT)
        .await
        .map_err(|e| e.kind())?;
    let text = std::str::from_utf8(&body).map_err(|_| ErrorKind::Protocol)?;
    let open = match decode_payload(text).next() {
        Some(Ok(EioPacket::Open(json))) => parse_open(json).map_err(|_| ErrorKind::Protocol)?,
        _ => return Err(ErrorKind::Protocol),
    };
    let mut replies = String::new();
    handle_payload(&body, rx, &mut replies)?;
    let session = Session {
        path: format!("{PATH}&sid={}", open.sid),
        get_timeout: Duration::from_millis(open.ping_interval + open.ping_timeout)
            + REQUEST_TIMEOUT,
    };
    Ok((session, replies))
}

/// Handles every packet of a GET body; returns how many chat messages it delivered.
fn handle_payload(
    body: &[u8],
    rx: &mut Receiver,
    replies: &mut String,
) -> Result<usize, ErrorKind> {
    let text = std::str::from_utf8(body).map_err(|_| ErrorKind::Protocol)?;
    let now = Instant::now();
    let mut delivered = 0;
    for packet in decode_payload(text) {
        let Ok(packet) = packet else {
            rx.error(ErrorKind::Protocol);
            continue;
        };
        match on_packet(packet, rx, now) {
            Step::Reply(reply) => {
                if !replies.is_empty() {
                    replies.push(RECORD_SEPARATOR);
                }
                replies.push_str(&reply);
            }
            Step::Connected => rx.connected(),
            Step::Delivered => delivered += 1,
            Step::Closed => return Err(ErrorKind::Closed),
            Step::Refused => return Err(ErrorKind::Protocol),
            Step::Nothing => {}
        }
    }
    Ok(delivered)
}

async fn get(
    rx: &mut Receiver,
    conn: &mut HttpConn,
    path: &str,
    timeout: Duration,
) -> Result<Bytes, HttpError> {
    rx.request();
    conn.get_ok(path, timeout).await
}

async fn post(
    rx: &mut Receiver,
    conn: &mut HttpConn,
    path: &str,
    packets: String,
) -> Result<(), ErrorKind> {
    rx.request();
    let body = Bytes::from(packets);
    let build = |t: &crate::net::TargetAddr| {
        t.request(Method::POST, path)
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            )
            .body(Full::new(body.clone()))
    };
    let resp = conn
        .send(build, false, REQUEST_TIMEOUT)
        .await
        .map_err(|e| e.kind())?;
    let status = resp.status();
    collect_body(resp, REQUEST_TIMEOUT)
        .await
        .map_err(|e| e.kind())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(ErrorKind::HttpStatus)
    }
}
