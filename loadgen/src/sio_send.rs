//! A sender's Socket.IO connection, for a profile whose send is an event (`[send] socketio =
//! {…}`): one WebSocket per sender, opened on its first send and again after a loss, on the
//! sender's counted stream (its bytes are sender bytes). A task owns the socket: it answers the
//! server's pings and writes the frames the sender hands it.
//!
//! A Socket.IO emit has no answer, so an event send is *accepted* when its frame was written to
//! the socket (handed to the kernel); a write that fails, or a socket already lost, is a failed
//! send. With `ack = true` the event asks for an acknowledgement and is accepted only when the
//! server's ack arrives (a socket lost first fails it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::counters::ErrorKind;
use crate::counters::WireCounters;
use crate::net::{ClientStream, TargetAddr, connect_tcp};
use pushpoll_wire::engineio::{
    EioPacket, SioPacket, decode_packet, decode_sio, encode_sio_connect,
};

type Ws = tokio_tungstenite::WebSocketStream<ClientStream>;

/// One frame to write, where its ack id goes (if it asks for one), and where to say whether it
/// was written (or acknowledged).
struct Write {
    frame: String,
    ack_at: Option<usize>,
    done: oneshot::Sender<bool>,
}

/// An open Socket.IO connection joined to the send namespace (a handle: clones share it).
#[derive(Clone)]
pub struct EventConn {
    writes: mpsc::Sender<Write>,
}

impl EventConn {
    /// Opens the WebSocket, joins `nsp` (within `timeout`) and starts the task that keeps the
    /// session alive until the socket is lost, the conn is dropped or `stop` is cancelled.
    pub async fn open(
        target: &TargetAddr,
        wire: &Arc<WireCounters>,
        nsp: &str,
        timeout: Duration,
        stop: CancellationToken,
    ) -> Result<EventConn, ErrorKind> {
        let ws = tokio::time::timeout(timeout, handshake(target, wire, nsp))
            .await
            .map_err(|_| ErrorKind::Timeout)??;
        let (writes, rx) = mpsc::channel(1);
        tokio::spawn(keep(ws, rx, stop));
        Ok(EventConn { writes })
    }

    /// False once the socket is lost: open a new one.
    pub fn is_open(&self) -> bool {
        !self.writes.is_closed()
    }

    /// Writes one Engine.IO frame; `Ok` once it is on the socket.
    pub async fn write(&self, frame: String) -> Result<(), ErrorKind> {
        self.send(frame, None).await
    }

    /// Writes one event frame (from [`pushpoll_wire::engineio::encode_sio_event`]) asking for an
    /// ack; `Ok` once the server acknowledged it. `nsp` is the frame's namespace.
    pub async fn write_acked(&self, frame: String, nsp: &str) -> Result<(), ErrorKind> {
        // The ack id goes right after `42` and the namespace: `42/chat,7["say",…]`.
        let mut prefix = String::new();
        encode_sio_connect(nsp, &mut prefix);
        self.send(frame, Some(prefix.len())).await
    }

    async fn send(&self, frame: String, ack_at: Option<usize>) -> Result<(), ErrorKind> {
        let (done, written) = oneshot::channel();
        self.writes
            .send(Write {
                frame,
                ack_at,
                done,
            })
            .await
            .map_err(|_| ErrorKind::Closed)?;
        match written.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ErrorKind::Io),
            Err(_) => Err(ErrorKind::Closed),
        }
    }
}

async fn handshake(
    target: &TargetAddr,
    wire: &Arc<WireCounters>,
    nsp: &str,
) -> Result<Ws, ErrorKind> {
    let tcp = connect_tcp(target, wire).await.map_err(|e| e.kind())?;
    let host = target.host.to_str().map_err(|_| ErrorKind::Protocol)?;
    // The scheme only shapes the request: the stream is already TLS for a wss:// target.
    let url = format!("ws://{host}/socket.io/?EIO=4&transport=websocket");
    let mut request = url.into_client_request().map_err(|_| ErrorKind::Protocol)?;
    target.access.add_headers(request.headers_mut());
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
        .await
        .map_err(|e| {
            if let tokio_tungstenite::tungstenite::Error::Http(resp) = &e {
                target.access.guard.observe(resp.status());
            }
            ErrorKind::Connect
        })?;
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => return Err(ErrorKind::Closed),
            Some(Err(_)) => return Err(ErrorKind::Io),
            Some(Ok(_)) => continue,
        };
        let reply = match decode_packet(text.as_str()) {
            Ok(EioPacket::Open(_)) => {
                let mut out = String::new();
                encode_sio_connect(nsp, &mut out);
                if let Some(auth) = &target.access.socketio_auth {
                    out.push_str(auth);
                }
                out
            }
            Ok(EioPacket::Ping(data)) => format!("3{data}"),
            Ok(EioPacket::Message(m)) => match decode_sio(m) {
                Ok(SioPacket::Connect { nsp: n, .. }) if n == nsp => return Ok(ws),
                Ok(SioPacket::ConnectError { .. }) => return Err(ErrorKind::Protocol),
                _ => continue,
            },
            Ok(EioPacket::Close) => return Err(ErrorKind::Closed),
            Ok(_) => continue,
            Err(_) => return Err(ErrorKind::Protocol),
        };
        ws.send(Message::text(reply))
            .await
            .map_err(|_| ErrorKind::Io)?;
    }
}

/// The socket's task: pongs, the sender's writes, and the end of the session.
async fn keep(mut ws: Ws, mut writes: mpsc::Receiver<Write>, stop: CancellationToken) {
    // Events waiting for their ack, by ack id.
    let mut awaiting: HashMap<u64, oneshot::Sender<bool>> = HashMap::new();
    let mut next_id: u64 = 0;
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => match heard(t.as_str()) {
                    Heard::End => return,
                    Heard::Reply(pong) => {
                        if ws.send(Message::text(pong)).await.is_err() {
                            return;
                        }
                    }
                    Heard::Ack(id) => {
                        if let Some(done) = awaiting.remove(&id) {
                            let _ = done.send(true);
                        }
                    }
                    Heard::Nothing => {}
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            write = writes.recv() => match write {
                Some(Write { mut frame, ack_at, done }) => {
                    let ack = ack_at.map(|at| {
                        next_id += 1;
                        frame.insert_str(at, &next_id.to_string());
                        next_id
                    });
                    let ok = ws.send(Message::text(frame)).await.is_ok();
                    match ack {
                        Some(id) if ok => {
                            awaiting.insert(id, done);
                        }
                        _ => {
                            let _ = done.send(ok);
                        }
                    }
                    if !ok {
                        return;
                    }
                }
                None => break,
            },
            _ = stop.cancelled() => break,
        }
    }
    let _ = ws.close(None).await;
}

/// What a frame from the server asks of the socket's task.
enum Heard {
    Nothing,
    /// Answer this (a pong).
    Reply(String),
    /// The server acknowledged the event with this ack id.
    Ack(u64),
    /// The server ended the session.
    End,
}

fn heard(text: &str) -> Heard {
    match decode_packet(text) {
        Ok(EioPacket::Ping(data)) => Heard::Reply(format!("3{data}")),
        Ok(EioPacket::Close) => Heard::End,
        Ok(EioPacket::Message(m)) if matches!(decode_sio(m), Ok(SioPacket::Disconnect { .. })) => {
            Heard::End
        }
        Ok(EioPacket::Message(m)) => match decode_sio(m) {
            Ok(SioPacket::Ack { ack, .. }) => Heard::Ack(ack),
            _ => Heard::Nothing,
        },
        _ => Heard::Nothing,
    }
}
