//! Engine.IO error answers worded as the reference server words them.
//!
//! socketioxide answers a request for an unknown session (e.g. a polling request a load balancer
//! sent to a node that does not hold the session: Engine.IO long-polling needs sticky sessions)
//! with `400 {"code":"1","message":"Session ID unknown"}`: the code is a string, where the
//! Node.js engine.io server (the protocol's reference) sends the number,
//! `{"code":1,"message":"Session ID unknown"}`. This layer turns such a code into a number; it
//! touches only `400` answers (a few dozen bytes), never a served packet.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

/// Error bodies larger than this are left as they are.
const MAX_ERROR_BODY: usize = 4096;

pub async fn numeric_codes(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::BAD_REQUEST {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let body = match numeric(&bytes) {
        Some(fixed) => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(fixed.len()));
            Body::from(fixed)
        }
        None => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

/// `{"code":"1",…}` → `{"code":1,…}`; `None` for anything else.
fn numeric(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(bytes).ok()?;
    let code: u64 = value.get("code")?.as_str()?.parse().ok()?;
    value["code"] = Value::from(code);
    serde_json::to_vec(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::numeric;

    #[test]
    fn string_codes_become_numbers_and_the_rest_is_kept() {
        assert_eq!(
            numeric(br#"{"code":"1","message":"Session ID unknown"}"#).as_deref(),
            Some(&br#"{"code":1,"message":"Session ID unknown"}"#[..])
        );
        assert_eq!(numeric(br#"{"code":3,"message":"Bad request"}"#), None);
        assert_eq!(numeric(b"not json"), None);
    }
}
