//! A Socket.IO request's head copied out of the connection's read buffer.
//!
//! hyper parses a request's URI and header values as slices of the connection's read buffer
//! (8 KiB, and a second one once a slice of the first is held), and engineioxide keeps the head
//! of the request that opened a session (`req_parts`) for as long as the session lives; an upgrade
//! request's head also lives in the WebSocket's task. So every idle WebSocket or polling session
//! held a 16 KiB read buffer for a few hundred bytes of headers (the buffer is 16 KiB because
//! hyper-util's protocol sniffing hands hyper the first bytes separately, and hyper's second read
//! grows its 8 KiB buffer), through the head and through axum's `OriginalUri` copy of the URI. Copying the head of the
//! requests that open a session or a WebSocket into allocations of their own frees those buffers
//! once the request is parsed (measured with `server/examples/idle_memory.rs`; see the README).

use axum::extract::{OriginalUri, Request};
use axum::http::header::{HeaderMap, HeaderValue, UPGRADE};
use axum::http::{Uri, request::Parts};
use axum::middleware::Next;
use axum::response::Response;

pub async fn own_head(request: Request, next: Next) -> Response {
    let request = if kept_long(&request) {
        let (mut parts, body) = request.into_parts();
        copy_head(&mut parts);
        Request::from_parts(parts, body)
    } else {
        request
    };
    next.run(request).await
}

/// A request that opens a session (no `sid=`) or a WebSocket: engineioxide keeps its head.
fn kept_long(request: &Request) -> bool {
    let opens_session = !request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("sid=")));
    opens_session || request.headers().contains_key(UPGRADE)
}

/// Gives the URI and every header value their own allocation (names are already owned: hyper
/// copies the names it does not know, the others are static).
fn copy_head(parts: &mut Parts) {
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        // axum's router keeps a clone of the URI as it arrived, for `OriginalUri`.
        if parts.extensions.get::<OriginalUri>().is_some() {
            parts.extensions.insert(OriginalUri(uri.clone()));
        }
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if let Ok(mut copy) = HeaderValue::from_bytes(value.as_bytes()) {
            copy.set_sensitive(value.is_sensitive());
            headers.append(name.clone(), copy);
        }
    }
    parts.headers = headers;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use bytes::Bytes;

    fn within(buffer: &Bytes, bytes: &[u8]) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&bytes.as_ptr())
    }

    #[test]
    fn the_copied_head_is_equal_and_shares_nothing_with_the_buffer() {
        // A stand-in for hyper's read buffer: the head's parts are slices of it.
        let buffer =
            Bytes::copy_from_slice(b"/socket.io/?EIO=4&transport=websocketx-customvaluetoken");
        let uri = Uri::from_maybe_shared(buffer.slice(0..37)).expect("uri");
        let value = HeaderValue::from_maybe_shared(buffer.slice(37..49)).expect("value");
        let mut secret = HeaderValue::from_maybe_shared(buffer.slice(49..)).expect("value");
        secret.set_sensitive(true);
        let request = Request::builder()
            .uri(uri.clone())
            .header("x-custom", value.clone())
            .header("x-custom", "second")
            .header("authorization", secret.clone())
            .extension(OriginalUri(uri.clone()))
            .body(Body::empty())
            .expect("request");
        assert!(within(&buffer, request.headers()["x-custom"].as_bytes()));
        assert!(kept_long(&request));

        let (mut parts, _) = request.into_parts();
        let before = parts.headers.clone();
        copy_head(&mut parts);
        assert_eq!(parts.uri, uri);
        assert_eq!(parts.headers, before);
        let all: Vec<_> = parts.headers.get_all("x-custom").iter().collect();
        assert_eq!(all, [&value, &HeaderValue::from_static("second")]);
        assert!(parts.headers["authorization"].is_sensitive());
        for v in parts.headers.values() {
            assert!(!within(&buffer, v.as_bytes()));
        }
        let path = parts.uri.path_and_query().expect("path").as_str();
        assert!(!within(&buffer, path.as_bytes()));
        let original = parts.extensions.get::<OriginalUri>().expect("kept");
        assert_eq!(original.0, uri);
        let path = original.0.path_and_query().expect("path").as_str();
        assert!(!within(&buffer, path.as_bytes()));
    }

    #[test]
    fn only_requests_that_open_a_session_or_a_websocket_are_copied() {
        let req = |uri: &str, upgrade: bool| {
            let mut b = Request::builder().uri(uri);
            if upgrade {
                b = b.header(UPGRADE, "websocket");
            }
            b.body(Body::empty()).expect("request")
        };
        assert!(kept_long(&req(
            "/socket.io/?EIO=4&transport=polling",
            false
        )));
        assert!(!kept_long(&req(
            "/socket.io/?EIO=4&transport=polling&sid=abc",
            false
        )));
        assert!(kept_long(&req(
            "/socket.io/?EIO=4&transport=websocket&sid=abc",
            true
        )));
    }
}
