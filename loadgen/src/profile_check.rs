//! `loadgen profile check FILE --target URL`: one message through every door a profile declares.
//! The receive doors are opened first (the Socket.IO namespace joined, the SSE stream open, the
//! poll list read), then one message is sent through the send door, then each receive door
//! waits for it (at most `--timeout`) and says OK or precisely what did not match: an HTTP
//! status, a missing field at a JSON pointer, an event that never arrived.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::counters::WireCounters;
use crate::net::{HttpConn, TargetAddr, collect_body, connect_tcp};
use crate::profile::{PollDoor, Profile, SocketioDoor, SseDoor, extract, extract_list};
use pushpoll_wire::engineio::{
    EioPacket, SioPacket, decode_packet, decode_sio, encode_sio_connect, encode_sio_event,
    split_event_borrowed,
};
use pushpoll_wire::sse::SseParser;

#[derive(Debug, Clone, Subcommand)]
pub enum ProfileCommand {
    /// Send one message through the profile's send door and check that every receive door it
    /// declares hands it out as the profile says.
    Check(CheckArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// `pushpoll`, `tutorial` or a TOML profile file.
    #[arg(value_name = "NAME|FILE")]
    pub file: String,
    /// The server to check (http(s)://HOST:PORT).
    #[arg(long)]
    pub target: String,
    /// Allow a --target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// How long each receive door may take to hand out the message.
    #[arg(long, default_value = "5s", value_parser = crate::scenario::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub access: crate::access::AccessArgs,
}

/// One door's verdict: `Ok(what was seen)` or `Err(what did not match)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorReport {
    pub door: String,
    pub verdict: Result<String, String>,
}

impl std::fmt::Display for DoorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Ok(detail) => write!(f, "{:<9} OK    {}", self.door, detail),
            Err(detail) => write!(f, "{:<9} FAIL  {}", self.door, detail),
        }
    }
}

/// Runs the check; the reports in door order (send first) and whether all passed.
pub async fn run(args: &CheckArgs) -> anyhow::Result<Vec<DoorReport>> {
    let mut access = args.access.clone();
    access.profile = Some(args.file.clone());
    let spec = access.to_spec()?;
    let url = crate::target::TargetUrl::parse(&args.target)?;
    let addr = url.resolve(args.allow_remote).await?;
    let target = TargetAddr::new(addr, &url.authority())?;
    let target = crate::access::reach(
        target,
        &url.host,
        url.tls,
        &spec,
        &crate::safety::SafetySpec::default(),
    )
    .await?;
    Ok(check(Arc::new(target), args.timeout).await)
}

/// [`run`] on a reached target (its profile says what to check).
pub async fn check(target: Arc<TargetAddr>, timeout: Duration) -> Vec<DoorReport> {
    let profile = target.profile.clone();
    let wire = Arc::new(WireCounters::default());
    let text = format!("profile-check-{}", std::process::id());
    let mut reports = Vec::new();
    // Open every receive door before the message is sent.
    let sio = match &profile.socketio {
        Some(door) => Some(SioDoor::open(&target, &wire, door, timeout).await),
        None => None,
    };
    let sse = match &profile.sse {
        Some(door) => Some(open_sse(&target, &wire, door, timeout).await),
        None => None,
    };
    let poll_start = match &profile.poll {
        Some(door) => Some(read_poll(&target, &wire, door, None).await),
        None => None,
    };
    let sent = send(&target, &wire, &profile, &text).await;
    let send_ok = sent.is_ok();
    reports.push(DoorReport {
        door: "send".into(),
        verdict: sent,
    });
    let deadline = Instant::now() + timeout;
    if let (Some(door), Some(opened)) = (&profile.socketio, sio) {
        let verdict = match opened {
            Err(e) => Err(e),
            Ok(_) if !send_ok => Err("not checked: the send failed".into()),
            Ok(mut s) => s.wait_for(door, &text, deadline, timeout).await,
        };
        reports.push(DoorReport {
            door: "socketio".into(),
            verdict,
        });
    }
    if let (Some(door), Some(opened)) = (&profile.sse, sse) {
        let verdict = match opened {
            Err(e) => Err(e),
            Ok(_) if !send_ok => Err("not checked: the send failed".into()),
            Ok(body) => wait_sse(body, door, &text, deadline, timeout).await,
        };
        reports.push(DoorReport {
            door: "sse".into(),
            verdict,
        });
    }
    if let (Some(door), Some(start)) = (&profile.poll, poll_start) {
        let verdict = match start {
            Err(e) => Err(e),
            Ok(_) if !send_ok => Err("not checked: the send failed".into()),
            Ok(last) => wait_poll(&target, &wire, door, &text, last, deadline, timeout).await,
        };
        reports.push(DoorReport {
            door: "poll".into(),
            verdict,
        });
    }
    reports
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between the poll door's reads while it waits for the message.
const POLL_EVERY: Duration = Duration::from_millis(100);

async fn send(
    target: &Arc<TargetAddr>,
    wire: &Arc<WireCounters>,
    profile: &Profile,
    text: &str,
) -> Result<String, String> {
    let door = &profile.send;
    if let Some(event) = &door.socketio {
        return send_event(target, wire, event, text).await;
    }
    let what = format!("{} {}", door.method, door.route);
    let body = bytes::Bytes::from(profile.send_body("profile-check", text));
    let method = Method::from_bytes(door.method.as_bytes()).unwrap_or(Method::POST);
    let content_type = HeaderValue::from_str(&door.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    let mut conn = HttpConn::new(target.clone(), wire.clone());
    let build = |t: &TargetAddr| {
        t.request(method.clone(), &door.route)
            .header(header::CONTENT_TYPE, content_type.clone())
            .body(Full::new(body.clone()))
    };
    let resp = conn
        .send(build, false, REQUEST_TIMEOUT)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let status = resp.status();
    let answer = collect_body(resp, REQUEST_TIMEOUT)
        .await
        .unwrap_or_default();
    if status.is_success() {
        Ok(format!("{what} answered {status}"))
    } else {
        Err(format!(
            "{what} answered {status}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        ))
    }
}

/// The send door as a Socket.IO event: joins its namespace and writes the event (an emit has
/// no answer: written is all the check can see; the receive doors show whether it arrived).
async fn send_event(
    target: &Arc<TargetAddr>,
    wire: &Arc<WireCounters>,
    event: &crate::profile::SendEvent,
    text: &str,
) -> Result<String, String> {
    let what = format!("event `{}` in namespace `{}`", event.event, event.namespace);
    let door = SocketioDoor {
        namespace: event.namespace.clone(),
        event: event.event.clone(),
        text: String::new(),
        id: None,
    };
    let mut ws = SioDoor::open(target, wire, &door, REQUEST_TIMEOUT)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let mut frame = String::new();
    encode_sio_event(
        &event.namespace,
        &event.event,
        &event.arg("profile-check", text),
        &mut frame,
    );
    if event.ack {
        // Ack id 1, right after `42` and the namespace.
        let mut prefix = String::new();
        encode_sio_connect(&event.namespace, &mut prefix);
        frame.insert(prefix.len(), '1');
    }
    ws.send(frame).await.map_err(|e| format!("{what}: {e}"))?;
    let verdict = if event.ack {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let Some(t) = ws.next_text(deadline).await else {
                break Err(format!("{what}: no ack within {REQUEST_TIMEOUT:?}"));
            };
            match decode_packet(&t) {
                Ok(EioPacket::Ping(data)) => ws.send(format!("3{data}")).await?,
                Ok(EioPacket::Message(m)) => {
                    if let Ok(SioPacket::Ack { ack: 1, args, .. }) = decode_sio(m) {
                        break Ok(format!("{what} acknowledged: {args}"));
                    }
                }
                _ => {}
            }
        }
    } else {
        Ok(format!("{what} written"))
    };
    // The close follows the event on the same stream: the server reads the event first.
    let _ = ws.ws.close(None).await;
    verdict
}

/// The list's highest id before the message was sent (or its length, without ids).
async fn read_poll(
    target: &Arc<TargetAddr>,
    wire: &Arc<WireCounters>,
    door: &PollDoor,
    after: Option<u64>,
) -> Result<Vec<crate::profile::Extracted>, String> {
    let path = door.path(after);
    let mut conn = HttpConn::new(target.clone(), wire.clone());
    let build = |t: &TargetAddr| t.request(Method::GET, &path).body(Full::default());
    let resp = conn
        .send(build, true, REQUEST_TIMEOUT)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = resp.status();
    let body = collect_body(resp, REQUEST_TIMEOUT)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {path} answered {status}"));
    }
    extract_list(&body, door).map_err(|e| format!("GET {path}: {e}"))
}

async fn wait_poll(
    target: &Arc<TargetAddr>,
    wire: &Arc<WireCounters>,
    door: &PollDoor,
    text: &str,
    before: Vec<crate::profile::Extracted>,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let after = before.iter().filter_map(|m| m.id).max();
    let after = door.cursor.as_ref().and(Some(after.unwrap_or(0)));
    let path = door.path(after);
    loop {
        let list = read_poll(target, wire, door, after).await?;
        if let Some(m) = list.iter().find(|m| m.text.contains(text)) {
            let id = m.id.map_or(String::new(), |id| format!(", id {id}"));
            return Ok(format!("GET {path}: the message is in the list{id}"));
        }
        if Instant::now() + POLL_EVERY > deadline {
            return Err(format!(
                "GET {path}: the message never appeared in the list at `{}` within {timeout:?}",
                door.list
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

type Ws = tokio_tungstenite::WebSocketStream<crate::net::ClientStream>;

struct SioDoor {
    ws: Ws,
    /// Events that arrived but were not the door's, for the report.
    others: Vec<String>,
}

impl SioDoor {
    /// Opens the WebSocket and joins the door's namespace.
    async fn open(
        target: &Arc<TargetAddr>,
        wire: &Arc<WireCounters>,
        door: &SocketioDoor,
        timeout: Duration,
    ) -> Result<SioDoor, String> {
        let tcp = connect_tcp(target, wire)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let host = target.host.to_str().unwrap_or("localhost");
        let url = format!("ws://{host}/socket.io/?EIO=4&transport=websocket");
        let mut request = url
            .into_client_request()
            .map_err(|e| format!("WebSocket request: {e}"))?;
        target.access.add_headers(request.headers_mut());
        let (ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::client_async(request, tcp))
            .await
            .map_err(|_| format!("WebSocket upgrade of /socket.io/ took longer than {timeout:?}"))?
            .map_err(|e| format!("WebSocket upgrade of /socket.io/: {e}"))?;
        let mut door_ws = SioDoor {
            ws,
            others: Vec::new(),
        };
        let deadline = Instant::now() + timeout;
        let ns = &door.namespace;
        loop {
            let Some(text) = door_ws.next_text(deadline).await else {
                return Err(format!(
                    "namespace `{ns}`: no connect acknowledgement within {timeout:?}"
                ));
            };
            match decode_packet(&text) {
                Ok(EioPacket::Open(_)) => {
                    let mut out = String::new();
                    encode_sio_connect(ns, &mut out);
                    if let Some(auth) = &target.access.socketio_auth {
                        out.push_str(auth);
                    }
                    door_ws.send(out).await?;
                }
                Ok(EioPacket::Ping(data)) => door_ws.send(format!("3{data}")).await?,
                Ok(EioPacket::Message(m)) => match decode_sio(m) {
                    Ok(SioPacket::Connect { nsp, .. }) if nsp == ns => return Ok(door_ws),
                    Ok(SioPacket::ConnectError { nsp, data }) => {
                        return Err(format!("namespace `{nsp}` refused the connect: {data}"));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    async fn send(&mut self, text: String) -> Result<(), String> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| format!("WebSocket send: {e}"))
    }

    /// The next text frame, `None` at the deadline or when the socket ends.
    async fn next_text(&mut self, deadline: Instant) -> Option<String> {
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match frame.ok()? {
                Message::Text(t) => return Some(t.to_string()),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    async fn wait_for(
        &mut self,
        door: &SocketioDoor,
        text: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<String, String> {
        let what = format!("event `{}` in namespace `{}`", door.event, door.namespace);
        while let Some(frame) = self.next_text(deadline).await {
            match decode_packet(&frame) {
                Ok(EioPacket::Ping(data)) => self.send(format!("3{data}")).await?,
                Ok(EioPacket::Message(m)) => {
                    let Ok(SioPacket::Event { nsp, args, .. }) = decode_sio(m) else {
                        continue;
                    };
                    let Ok((name, arg)) = split_event_borrowed(args) else {
                        return Err(format!("{what}: an event that is not a JSON array: {m}"));
                    };
                    if nsp != door.namespace || name != door.event {
                        self.others.push(format!("`{name}` in namespace `{nsp}`"));
                        continue;
                    }
                    if !arg.contains(text) {
                        continue;
                    }
                    return verdict_of(&what, arg, &door.text, door.id.as_deref());
                }
                _ => {}
            }
        }
        let others = if self.others.is_empty() {
            String::new()
        } else {
            format!(" (arrived instead: {})", self.others.join(", "))
        };
        Err(format!("{what} never arrived within {timeout:?}{others}"))
    }
}

/// OK when `json` holds the text (and id) at the door's pointers, else what is missing.
fn verdict_of(what: &str, json: &str, text: &str, id: Option<&str>) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("{what}: not JSON ({e}): {json}"))?;
    match extract(&v, text, id) {
        Ok(m) => {
            let id = m.id.map_or(String::new(), |id| format!(", id {id}"));
            Ok(format!("{what}: text at `{text}`{id}"))
        }
        Err(e) => Err(format!("{what} arrived, but: {e} in {json}")),
    }
}

async fn open_sse(
    target: &Arc<TargetAddr>,
    wire: &Arc<WireCounters>,
    door: &SseDoor,
    timeout: Duration,
) -> Result<(HttpConn, hyper::body::Incoming), String> {
    let mut conn = HttpConn::new(target.clone(), wire.clone());
    let path = &door.path;
    let build = |t: &TargetAddr| {
        t.request(Method::GET, path)
            .header(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            )
            .body(Full::default())
    };
    let resp = conn
        .send(build, true, timeout)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let is_stream = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if resp.status() != StatusCode::OK || !is_stream {
        return Err(format!(
            "GET {path} answered {} ({}), not an event stream",
            resp.status(),
            resp.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("no content type")
        ));
    }
    Ok((conn, resp.into_body()))
}

async fn wait_sse(
    (_conn, mut body): (HttpConn, hyper::body::Incoming),
    door: &SseDoor,
    text: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let what = format!("GET {} event `{}`", door.path, door.event);
    let mut parser = SseParser::new();
    let mut found: Option<Result<String, String>> = None;
    let mut others = Vec::new();
    while found.is_none() {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await else {
            break;
        };
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let parsed = parser.push(&chunk, |event| {
            if !event.data.contains(text) || found.is_some() {
                return;
            }
            if event.event != door.event {
                others.push(event.event.to_string());
                return;
            }
            found = Some(verdict_of(
                &what,
                event.data,
                &door.text,
                door.id.as_deref(),
            ));
        });
        if let Err(e) = parsed {
            return Err(format!("{what}: not an event stream: {e}"));
        }
    }
    found.unwrap_or_else(|| {
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(" (the message came as event `{}`)", others.join("`, `"))
        };
        Err(format!("{what} never arrived within {timeout:?}{others}"))
    })
}
