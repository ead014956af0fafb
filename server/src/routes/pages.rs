//! The chat page and the race page (compiled in), the official Socket.IO client bundle,
//! `/healthz` and `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api_error::ApiError;
use crate::assets::{APP_JS, INDEX_HTML, RACE_CSS, RACE_HTML, RACE_JS, STYLE_CSS};
use crate::state::AppState;

const NO_CACHE: (header::HeaderName, &str) = (header::CACHE_CONTROL, "no-cache");

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// A compiled-in page file, revalidated on every load.
fn page_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), NO_CACHE], body).into_response()
}

pub async fn index() -> Response {
    page_file(HTML, INDEX_HTML)
}

pub async fn app_js() -> Response {
    page_file(JS, APP_JS)
}

pub async fn style_css() -> Response {
    page_file(CSS, STYLE_CSS)
}

/// `/race`: one page listening through every door at once.
pub async fn race() -> Response {
    page_file(HTML, RACE_HTML)
}

pub async fn race_js() -> Response {
    page_file(JS, RACE_JS)
}

pub async fn race_css() -> Response {
    page_file(CSS, RACE_CSS)
}

pub async fn socket_io_client(State(st): State<AppState>) -> Response {
    match &st.assets.socket_io_client {
        Some(bytes) => ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], bytes.clone()).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "socket.io-client is not installed: run `npm ci --prefix web` in the pushpoll checkout \
             (or pass --web-dir pointing at a folder with node_modules/socket.io-client), then restart",
        )
        .into_response(),
    }
}

/// How long `/healthz` waits for Redis's `PONG`.
const REDIS_PING_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// `{"status":"ok"}`; with `--redis` also whether Redis answers: `"redis":"up"`, or
/// `"status":"degraded","redis":"down"` and why (still `200`: this node serves every reader,
/// only new messages wait for Redis).
pub async fn healthz(State(st): State<AppState>) -> Response {
    let body = match &st.broker {
        None => serde_json::json!({ "status": "ok" }),
        Some(broker) => {
            let ping = tokio::time::timeout(REDIS_PING_WAIT, broker.ping()).await;
            match ping {
                Ok(Ok(())) => serde_json::json!({ "status": "ok", "redis": "up" }),
                Ok(Err(e)) => serde_json::json!({
                    "status": "degraded", "redis": "down", "error": e.to_string()
                }),
                Err(_) => serde_json::json!({
                    "status": "degraded", "redis": "down",
                    "error": format!("no answer to PING from {} within {REDIS_PING_WAIT:?}", broker.target())
                }),
            }
        }
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    refresh_gauges(&st);
    match st.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}"))
            .into_response(),
    }
}

/// Gauges that are cheaper to compute at scrape time than to track on every change.
fn refresh_gauges(st: &AppState) {
    let m = &st.metrics;
    m.log_messages
        .set(i64::try_from(st.log.len()).unwrap_or(i64::MAX));
    m.log_latest_id
        .set(i64::try_from(st.log.latest_id()).unwrap_or(i64::MAX));
    let (mut websocket, mut polling) = (0, 0);
    for socket in st.io.sockets() {
        match socket.transport_type() {
            socketioxide::TransportType::Websocket => websocket += 1,
            socketioxide::TransportType::Polling => polling += 1,
        }
    }
    m.sockets_connected
        .with_label_values(&["websocket"])
        .set(websocket);
    m.sockets_connected
        .with_label_values(&["polling"])
        .set(polling);
}

pub async fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route; see the API table in README.md (GET/POST /messages, GET /events, /socket.io/)",
    )
    .into_response()
}
