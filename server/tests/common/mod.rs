//! Shared helpers for the chat-server integration tests: a real server on 127.0.0.1:0, an HTTP
//! client, /metrics reading and minimal Engine.IO v4 / Socket.IO v5 clients (WebSocket and polling).
#![allow(dead_code)] // each test binary uses a different subset

pub mod child;
pub mod mem;
pub mod raw;
pub mod raw_ws;
pub mod redis;
pub mod sse;

use std::net::SocketAddr;
use std::time::Duration;

use chat_server::{Config, RunningServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for anything a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn config() -> Config {
    Config {
        addr: "127.0.0.1:0".parse().expect("valid addr"),
        ..Config::default()
    }
}

pub async fn start() -> RunningServer {
    start_with(config()).await
}

pub async fn start_with(config: Config) -> RunningServer {
    chat_server::spawn(config)
        .await
        .expect("server starts on 127.0.0.1:0")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client builds")
}

pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// POSTs a JSON message and returns the stored message.
pub async fn post(addr: SocketAddr, name: &str, message: &str) -> Value {
    let response = client()
        .post(url(addr, "/messages"))
        .json(&serde_json::json!({ "name": name, "message": message }))
        .send()
        .await
        .expect("POST /messages");
    assert_eq!(response.status(), 201);
    response.json().await.expect("stored message JSON")
}

pub async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let response = client().get(url(addr, path)).send().await.expect("GET");
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("JSON body")
}

/// The value of an unlabelled metric, or of the first series whose label text matches.
pub async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let text = client()
        .get(url(addr, "/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    metric_in(&text, series).unwrap_or_else(|| panic!("{series} not in /metrics:\n{text}"))
}

pub fn metric_in(text: &str, series: &str) -> Option<f64> {
    pushpoll_wire::prometheus::sample(text, series)
}

/// Re-reads a metric until `ok` holds (bounded by [`DEADLINE`]).
pub async fn wait_for_metric(addr: SocketAddr, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let end = Instant::now() + DEADLINE;
    loop {
        let text = client()
            .get(url(addr, "/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        let text = text.text().await.expect("metrics text");
        if let Some(v) = metric_in(&text, series).filter(|&v| ok(v)) {
            return v;
        }
        assert!(
            Instant::now() < end,
            "{series} never reached the expected value:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn ids(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|m| m["id"].as_u64().expect("numeric id"))
        .collect()
}

/// Runs `node web/test/SCRIPT http://ADDR` (bounded in time) and returns its stdout; fails the
/// test with the script's output if it exits non-zero.
pub async fn run_node_script(script: &str, addr: SocketAddr) -> String {
    let web = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web");
    assert!(
        web.join("node_modules/socket.io-client/package.json")
            .exists(),
        "web/node_modules/socket.io-client is missing: run the tests with `scripts/test` (it runs `npm ci --prefix web`)"
    );
    let child = tokio::process::Command::new("node")
        .arg(web.join("test").join(script))
        .arg(format!("http://{addr}"))
        .current_dir(&web)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("`node` runs (install Node.js 18 or newer)");
    let output = timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the Node script finishes within 60 s")
        .expect("node output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// A Socket.IO client over WebSocket, speaking Engine.IO v4 by hand.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects, joins namespace `/` and waits for the server's `40{"sid":…}`.
    pub async fn connect(addr: SocketAddr) -> WsClient {
        let (ws, _) = tokio_tungstenite::connect_async(format!(
            "ws://{addr}/socket.io/?EIO=4&transport=websocket"
        ))
        .await
        .expect("WebSocket handshake");
        let mut client = WsClient { ws };
        let open = client.next_text().await.expect("engine.io open packet");
        assert!(
            open.starts_with("0{") && open.contains("\"sid\""),
            "open packet: {open}"
        );
        client.send("40").await;
        let connect = client.next_text().await.expect("socket.io connect ack");
        assert!(connect.starts_with("40{"), "connect packet: {connect}");
        client
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(WsMessage::text(text))
            .await
            .expect("WebSocket send");
    }

    pub async fn emit_message(&mut self, payload: &Value) {
        self.send(&format!("42{}", serde_json::json!(["message", payload])))
            .await;
    }

    /// The next text frame (answering pings), or None when the connection closed.
    pub async fn next_text(&mut self) -> Option<String> {
        loop {
            let frame = timeout(DEADLINE, self.ws.next())
                .await
                .expect("a frame within the deadline");
            match frame {
                Some(Ok(WsMessage::Text(text))) if text.as_str() == "2" => {
                    if self.ws.send(WsMessage::text("3")).await.is_err() {
                        return None;
                    }
                }
                Some(Ok(WsMessage::Text(text))) => return Some(text.as_str().to_owned()),
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The payload of the next `message` event.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let text = self.next_text().await.expect("socket still open");
            if let Some(event) = parse_event(&text) {
                return event;
            }
        }
    }
}

/// `42["message",{…}]` → `{…}`.
pub fn parse_event(packet: &str) -> Option<Value> {
    let body = packet.strip_prefix("42")?;
    let value: Value = serde_json::from_str(body).ok()?;
    (value.get(0)? == "message").then(|| value[1].clone())
}

/// A Socket.IO client over Engine.IO long-polling (one GET in flight, POSTs to send).
pub struct PollingClient {
    addr: SocketAddr,
    sid: String,
    http: reqwest::Client,
    pending: std::collections::VecDeque<String>,
}

impl PollingClient {
    pub async fn connect(addr: SocketAddr) -> PollingClient {
        let http = client();
        let open = http
            .get(url(addr, "/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .expect("polling handshake")
            .text()
            .await
            .expect("handshake body");
        let handshake: Value =
            serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("open JSON");
        let sid = handshake["sid"].as_str().expect("sid").to_owned();
        let mut client = PollingClient {
            addr,
            sid,
            http,
            pending: Default::default(),
        };
        client.post("40").await;
        let connect = client.next_packet().await.expect("socket.io connect ack");
        assert!(connect.starts_with("40{"), "connect packet: {connect}");
        client
    }

    fn session_url(&self) -> String {
        url(
            self.addr,
            &format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid),
        )
    }

    pub async fn post(&self, packets: &str) {
        let response = self
            .http
            .post(self.session_url())
            .body(packets.to_owned())
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200, "engine.io POST");
    }

    /// Sends packets; false when the server is gone or refused them.
    pub async fn try_post(&self, packets: &str) -> bool {
        let sent = self
            .http
            .post(self.session_url())
            .body(packets.to_owned())
            .send()
            .await;
        sent.is_ok_and(|r| r.status() == 200)
    }

    /// The next packet, polling as needed (answering pings); None when the session ended.
    pub async fn next_packet(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.pending.pop_front() {
                if p == "2" {
                    if !self.try_post("3").await {
                        return None;
                    }
                    continue;
                }
                return Some(p);
            }
            let response = timeout(DEADLINE, self.http.get(self.session_url()).send())
                .await
                .expect("poll within the deadline");
            let Ok(response) = response else { return None };
            if response.status() != 200 {
                return None;
            }
            let body = response.text().await.ok()?;
            self.pending.extend(
                body.split(pushpoll_wire::engineio::RECORD_SEPARATOR)
                    .map(str::to_owned),
            );
        }
    }

    pub async fn next_message(&mut self) -> Value {
        loop {
            let packet = self.next_packet().await.expect("session still open");
            if let Some(event) = parse_event(&packet) {
                return event;
            }
        }
    }
}
