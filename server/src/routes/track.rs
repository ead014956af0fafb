//! Per-route request counts and body bytes, as middleware around every route.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Body as _, Frame, SizeHint};
use prometheus::IntCounter;

use crate::metrics::{Metrics, Route};

pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = classify(
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let counters = metrics.route(route);
    let request = request.map(|body| counted(body, counters.request_body_bytes.clone()));
    let response = next.run(request).await;
    counters.count_status(response.status().as_u16());
    response.map(|body| counted(body, counters.response_body_bytes.clone()))
}

fn classify(method: &Method, path: Option<&str>) -> Route {
    match (path, *method == Method::GET, *method == Method::POST) {
        (Some("/messages"), true, _) => Route::MessagesGet,
        (Some("/messages"), _, true) => Route::MessagesPost,
        (Some("/events"), true, _) => Route::Events,
        (Some("/socket.io" | "/socket.io/"), _, _) => Route::SocketIo,
        (Some("/socket.io/socket.io.js"), true, _) => Route::SocketIoJs,
        (Some("/" | "/app.js" | "/style.css" | "/race" | "/race.js" | "/race.css"), true, _) => {
            Route::Page
        }
        (Some("/metrics"), true, _) => Route::Metrics,
        (Some("/healthz"), true, _) => Route::Healthz,
        _ => Route::Other,
    }
}

fn counted(body: Body, counter: IntCounter) -> Body {
    // Bodies known to be empty (most GETs, 304s, upgrades) skip the wrapper.
    if body.size_hint().exact() == Some(0) {
        return body;
    }
    Body::new(CountingBody {
        inner: body,
        counter,
    })
}

/// A body that adds the size of every data frame to a counter as it flows.
struct CountingBody {
    inner: Body,
    counter: IntCounter,
}

impl hyper::body::Body for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified_by_method_and_matched_path() {
        assert_eq!(
            classify(&Method::GET, Some("/messages")),
            Route::MessagesGet
        );
        assert_eq!(
            classify(&Method::POST, Some("/messages")),
            Route::MessagesPost
        );
        assert_eq!(
            classify(&Method::POST, Some("/socket.io/")),
            Route::SocketIo
        );
        assert_eq!(classify(&Method::GET, Some("/race.js")), Route::Page);
        assert_eq!(classify(&Method::GET, None), Route::Other);
        assert_eq!(classify(&Method::DELETE, Some("/messages")), Route::Other);
    }
}
