//! What the fault-injecting server asks of its clients before it serves them (issue 15): a
//! header, a session cookie from `POST /login`, a Socket.IO `auth` token; and a server that
//! starts answering `429 Too Many Requests` after a number of requests. Every refusal is counted.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// The body `POST /login` accepts.
pub const LOGIN_BODY: &str = "user=probe&password=right";
/// The cookie it sets.
pub const SESSION_COOKIE: &str = "session=s3cr3t";

#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Every request must carry this header (name, value); else `401`.
    pub header: Option<(String, String)>,
    /// Every request but `POST /login` must carry [`SESSION_COOKIE`]; else `401`.
    pub cookie: bool,
    /// The Socket.IO namespace connect must carry `auth` `{"token": this}`; else refused.
    pub socketio_token: Option<String>,
    /// After this many requests (`/healthz` aside), every request is answered `429`.
    pub too_many_after: Option<u64>,
    pub log: Arc<GateLog>,
}

#[derive(Debug, Default)]
pub struct GateLog {
    pub requests: AtomicU64,
    pub unauthorized: AtomicU64,
    pub too_many: AtomicU64,
    pub sockets_refused: AtomicU64,
    pub logins: AtomicU64,
}

/// The Socket.IO connect refusal.
#[derive(Debug)]
pub struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unauthorized")
    }
}

impl Gate {
    /// Whether a Socket.IO connect with this `auth` payload may join.
    pub fn admit_socket(&self, auth: Option<&serde_json::Value>) -> Result<(), Refused> {
        let Some(token) = &self.socketio_token else {
            return Ok(());
        };
        let given = auth.and_then(|a| a.get("token")).and_then(|t| t.as_str());
        if given == Some(token.as_str()) {
            Ok(())
        } else {
            self.log.sockets_refused.fetch_add(1, Relaxed);
            Err(Refused)
        }
    }

    /// `router` behind the gate, with `POST /login`.
    pub fn wrap(&self, router: Router) -> Router {
        let gate = self.clone();
        let login = {
            let gate = self.clone();
            move |body: Bytes| {
                let gate = gate.clone();
                async move { gate.login(&body) }
            }
        };
        router
            .route("/login", post(login))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                let gate = gate.clone();
                async move { gate.check(req, next).await }
            }))
    }

    fn login(&self, body: &[u8]) -> Response {
        if body != LOGIN_BODY.as_bytes() {
            self.log.unauthorized.fetch_add(1, Relaxed);
            return StatusCode::UNAUTHORIZED.into_response();
        }
        self.log.logins.fetch_add(1, Relaxed);
        let cookie = format!("{SESSION_COOKIE}; Path=/; HttpOnly");
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        resp
    }

    async fn check(&self, req: Request, next: Next) -> Response {
        let path = req.uri().path().to_string();
        if path != "/healthz" {
            let n = self.log.requests.fetch_add(1, Relaxed) + 1;
            if self.too_many_after.is_some_and(|after| n > after) {
                self.log.too_many.fetch_add(1, Relaxed);
                return (StatusCode::TOO_MANY_REQUESTS, Body::from("slow down")).into_response();
            }
        }
        let headers = req.headers();
        let header_ok = self.header.as_ref().is_none_or(|(name, value)| {
            headers.get(name.as_str()).and_then(|v| v.to_str().ok()) == Some(value.as_str())
        });
        let cookie_ok = !self.cookie
            || path == "/login"
            || headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.split(';').any(|c| c.trim() == SESSION_COOKIE));
        if header_ok && cookie_ok {
            next.run(req).await
        } else {
            self.log.unauthorized.fetch_add(1, Relaxed);
            StatusCode::UNAUTHORIZED.into_response()
        }
    }
}
