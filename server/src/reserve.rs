//! Connections over `--max-connections`: a small reserve ([`RESERVE`] connections) still gets a
//! clear answer — `503 Service Unavailable` with `Retry-After` and `Connection: close` — while
//! `GET /healthz` and `GET /metrics` answer normally, so a full server can still be checked and
//! watched. Each reserve connection serves requests for at most its lifetime (the header timeout),
//! without keep-alive on HTTP/1.
//!
//! [`RESERVE`]: crate::limits::RESERVE

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::api_error::ApiError;
use crate::connection::LimitedStream;
use crate::limits::{Limits, RETRY_AFTER_SECS};

/// Answers requests on a connection over the limit.
#[derive(Clone)]
struct ReserveService {
    app: Router,
    max_connections: usize,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ReserveService {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let watchable = request.method() == Method::GET
            && matches!(request.uri().path(), "/healthz" | "/metrics");
        if watchable {
            return Box::pin(self.app.clone().oneshot(request.map(Body::new)));
        }
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server is at its connection limit ({} connections, --max-connections); \
                 retry in {RETRY_AFTER_SECS} s",
                self.max_connections
            ),
        )
        .into_response();
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        if request.version() <= Version::HTTP_11 {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Box::pin(std::future::ready(Ok(response)))
    }
}

/// Serves one reserve connection for at most `limits.reserve_lifetime()`, or until `shutdown`.
pub async fn serve<S>(
    io: LimitedStream<S>,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder: Builder<TokioExecutor> = limits.builder();
    builder.http1().keep_alive(false);
    builder.http2().max_concurrent_streams(1);
    let service = ReserveService {
        app,
        max_connections: limits.max_connections,
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    // Past its lifetime, or on shutdown, the connection is dropped, which closes it.
    tokio::select! {
        served = tokio::time::timeout(limits.reserve_lifetime(), conn) => {
            if let Ok(Err(e)) = served {
                tracing::trace!("reserve connection ended: {e}");
            }
        }
        () = shutdown.cancelled() => {}
    }
}
