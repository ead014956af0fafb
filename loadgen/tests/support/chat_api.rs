//! A hand-written chat with another protocol than the project's, for target profiles (issue 15):
//! `POST /api/chat` with `{"body": …}`; `GET /api/chat?after=SEQ` answers
//! `{"items":[{"seq":…,"body":…}]}`; every message is emitted as Socket.IO event `chat` in
//! namespace `/chat` (nothing on `/`), and as Server-Sent Event `chat-msg` on `GET /api/stream`.
//! Socket.IO event `say` with `{"body": …}` in `/chat` is taken as a POST is (and acknowledged
//! with `{"seq": …}` when the client asks for an ack). Described by
//! `profiles/chat-api.toml` (sends by POST) and `profiles/chat-api-event.toml` (by event `say`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The profile file that describes this server.
pub const PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/profiles/chat-api.toml"
);

/// The same server, its messages sent as Socket.IO event `say`.
pub const EVENT_PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/profiles/chat-api-event.toml"
);

#[derive(Clone)]
struct App {
    items: Arc<Mutex<Vec<(u64, String)>>>,
    io: SocketIo,
    stream: tokio::sync::broadcast::Sender<Value>,
    /// Messages taken by POST and by event `say`.
    posted: Arc<AtomicU64>,
    said: Arc<AtomicU64>,
}

pub struct ChatApiServer {
    addr: SocketAddr,
    app: App,
    stop: CancellationToken,
}

impl Drop for ChatApiServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ChatApiServer {
    pub async fn start() -> ChatApiServer {
        let (layer, io) = SocketIo::builder().build_layer();
        let app = App {
            items: Arc::default(),
            io: io.clone(),
            stream: tokio::sync::broadcast::Sender::new(1024),
            posted: Arc::default(),
            said: Arc::default(),
        };
        let on_connect = app.clone();
        io.ns("/chat", move |socket: SocketRef| {
            let app = on_connect.clone();
            // Event `say` with `{"body": …}`: stored and broadcast as a POST is.
            socket.on("say", move |Data(item): Data<NewItem>, ack: AckSender| {
                let app = app.clone();
                async move {
                    app.said.fetch_add(1, Relaxed);
                    let seq = store(&app, item.body).await;
                    // Answered only when the client asked for an ack.
                    let _ = ack.send(&json!({ "seq": seq }));
                }
            });
            async {}
        });
        let router = Router::new()
            .route("/api/chat", get(list).post(post))
            .route("/api/stream", get(stream))
            .with_state(app.clone())
            .layer(layer);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        let serve =
            axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move {
            let _ = serve.await;
        });
        ChatApiServer { addr, app, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends every Socket.IO session in `/chat` (the clients' sockets are lost).
    pub async fn disconnect_all(&self) {
        if let Some(ns) = self.app.io.of("/chat") {
            let _ = ns.disconnect().await;
        }
    }

    /// Messages taken so far: (by POST, by event `say`).
    pub fn taken(&self) -> (u64, u64) {
        (self.app.posted.load(Relaxed), self.app.said.load(Relaxed))
    }

    /// `http://ADDR`, for `--target`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

#[derive(Deserialize)]
struct After {
    after: Option<u64>,
}

async fn list(State(app): State<App>, Query(q): Query<After>) -> Json<Value> {
    let after = q.after.unwrap_or(0);
    let items = app.items.lock().unwrap_or_else(|p| p.into_inner());
    let items: Vec<Value> = items
        .iter()
        .filter(|(seq, _)| *seq > after)
        .map(|(seq, body)| json!({"seq": seq, "body": body}))
        .collect();
    Json(json!({ "items": items }))
}

#[derive(Deserialize)]
struct NewItem {
    body: String,
}

async fn post(State(app): State<App>, Json(item): Json<NewItem>) -> Json<Value> {
    app.posted.fetch_add(1, Relaxed);
    let seq = store(&app, item.body).await;
    Json(json!({ "seq": seq }))
}

/// Stores a message and hands it out through the Socket.IO and SSE doors.
async fn store(app: &App, body: String) -> u64 {
    let seq = {
        let mut items = app.items.lock().unwrap_or_else(|p| p.into_inner());
        let seq = items.len() as u64 + 1;
        items.push((seq, body.clone()));
        seq
    };
    let message = json!({"seq": seq, "body": body});
    let _ = app.stream.send(message.clone());
    if let Some(ns) = app.io.of("/chat") {
        let _ = ns.emit("chat", &message).await;
    }
    seq
}

/// Every message from now on as event `chat-msg`.
async fn stream(
    State(app): State<App>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let rx = app.stream.subscribe();
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(m) => {
                    let event = Event::default().event("chat-msg").data(m.to_string());
                    return Some((Ok(event), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events)
}
