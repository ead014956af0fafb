//! One accepted connection served by hyper under the server's limits: requests in progress are
//! tracked, and a per-connection watchdog closes the connection when it has been idle too long
//! (`--idle-timeout`) or when a request's headers have not been complete in time
//! (`--header-timeout`).
//!
//! Why a watchdog of our own rather than hyper's `header_read_timeout`: hyper (1.x) starts that
//! timer as soon as an HTTP/1 connection goes idle, so it would also close keep-alive connections
//! after the header timeout; it does not cover the protocol sniffing of the auto builder nor
//! HTTP/2. Here *idle* means no request in progress — a long poll, an SSE stream or an engine.io
//! poll is a request in progress however quiet it is — and the header timer starts with the first
//! byte of a request on an idle HTTP/1 connection. An upgraded connection (WebSocket) leaves this
//! task: its own heartbeat governs it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::body_deadline::DeadlineBody;
use crate::limits::{GOAWAY_GRACE, Limits};
use crate::metrics::{GaugeGuard, Metrics};

const NEVER: u64 = u64::MAX;
/// The first bytes of the HTTP/2 connection preface (`PRI * HTTP/2.0`).
const H2_PREFACE_START: &[u8] = b"PRI ";

/// What a connection is doing, shared by its stream (bytes read), its service (requests begun
/// and ended) and its watchdog. Times are milliseconds since the connection was accepted.
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// When the last request in progress ended (0: accepted, nothing yet).
    idle_since: AtomicU64,
    /// When the first byte arrived while idle ([`NEVER`]: none since `idle_since`).
    first_byte: AtomicU64,
    read_any: AtomicBool,
    http2: AtomicBool,
    changed: Notify,
}

/// Why the watchdog closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Header,
    Idle,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            first_byte: AtomicU64::new(NEVER),
            read_any: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.born + Duration::from_millis(ms)
    }

    pub fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    /// Called with every chunk read from the peer.
    fn on_read(&self, bytes: &[u8]) {
        if !self.read_any.load(Ordering::Relaxed) {
            self.read_any.store(true, Ordering::Relaxed);
            if bytes.starts_with(H2_PREFACE_START) {
                self.http2.store(true, Ordering::Relaxed);
            }
        }
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.first_byte.load(Ordering::Relaxed) == NEVER
        {
            self.first_byte.store(self.now(), Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// A request begins; it is in progress until the returned guard is dropped (with the
    /// response body, or with the response future if the request is abandoned).
    fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        if version == Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.first_byte.store(NEVER, Ordering::Relaxed);
            self.idle_since.store(self.now(), Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// When the connection expires if nothing changes (`None`: a request is in progress).
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let first_byte = self.first_byte.load(Ordering::Relaxed);
        // Once a request's first byte is in, its headers have the header timeout (not what is
        // left of the idle one). HTTP/2 peers send frames while idle (PING, SETTINGS,
        // WINDOW_UPDATE), so there only idleness counts.
        if let Some(t) = limits.header_timeout
            && first_byte != NEVER
            && !self.is_http2()
        {
            return Some((self.at(first_byte) + t, Expiry::Header));
        }
        limits.idle_timeout.map(|t| {
            (
                self.at(self.idle_since.load(Ordering::Relaxed)) + t,
                Expiry::Idle,
            )
        })
    }
}

/// Completes when the connection has expired.
pub async fn watchdog(activity: Arc<Activity>, limits: Limits) -> Expiry {
    loop {
        match activity.deadline(&limits) {
            None => activity.changed.notified().await,
            Some((at, why)) => {
                if at <= Instant::now() {
                    return why;
                }
                tokio::select! {
                    () = tokio::time::sleep_until(at.into()) => {}
                    () = activity.changed.notified() => {}
                }
            }
        }
    }
}

/// A request in progress; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// An accepted stream as hyper sees it: it reports reads to the [`Activity`] and holds the
/// connection's slot (`--max-connections`) and open-connections gauge until it is dropped —
/// after an upgrade, that is when the WebSocket closes.
pub struct LimitedStream<S> {
    inner: S,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
    _open: GaugeGuard,
}

impl<S> LimitedStream<S> {
    pub fn new(inner: S, slot: OwnedSemaphorePermit, metrics: &Metrics) -> Self {
        LimitedStream {
            inner,
            activity: Activity::new(),
            _slot: slot,
            _open: GaugeGuard::new(&metrics.tcp_connections_open),
        }
    }

    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LimitedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result
            && buf.filled().len() > before
        {
            self.activity.on_read(&buf.filled()[before..]);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LimitedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The app as hyper calls it on one connection: request bodies get the `--body-timeout` deadline,
/// and each request counts as in progress until its response body is done.
#[derive(Clone)]
pub struct ConnService {
    app: Router,
    activity: Arc<Activity>,
    body_timeout: Option<Duration>,
    body_timeouts: IntCounter,
}

impl ConnService {
    pub fn new(app: Router, activity: Arc<Activity>, limits: &Limits, metrics: &Metrics) -> Self {
        ConnService {
            app,
            activity,
            body_timeout: limits.body_timeout,
            body_timeouts: metrics.body_timeouts.clone(),
        }
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin(request.version());
        let request = request.map(|body| match self.body_timeout {
            Some(timeout) if !hyper::body::Body::is_end_stream(&body) => {
                Body::new(DeadlineBody::new(body, timeout, self.body_timeouts.clone()))
            }
            _ => Body::new(body),
        });
        let response = self.app.clone().oneshot(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| Body::new(InFlightBody { inner, in_flight })))
        })
    }
}

/// A response body that keeps its request in progress until it is done or dropped.
struct InFlightBody {
    inner: Body,
    #[allow(dead_code)] // held for its Drop
    in_flight: InFlight,
}

impl hyper::body::Body for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves one connection until it ends, the watchdog expires it, or `shutdown` asks every
/// connection to finish (then in-progress requests complete and the connection closes).
pub async fn serve<S>(
    builder: Builder<TokioExecutor>,
    io: LimitedStream<S>,
    service: ConnService,
    limits: Limits,
    metrics: Metrics,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = io.activity().clone();
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let expiry = watchdog(activity.clone(), limits);
    tokio::pin!(expiry);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!("connection ended: {e}");
                }
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            why = &mut expiry => {
                match why {
                    Expiry::Header => metrics.header_timeouts.inc(),
                    Expiry::Idle => metrics.idle_timeouts.inc(),
                }
                if activity.is_http2() && !draining {
                    // A GOAWAY tells the client which requests were seen; then the connection goes.
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(GOAWAY_GRACE, conn.as_mut()).await.ok();
                }
                // Dropping the connection closes it (an HTTP/1 peer sees the TCP connection end).
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(header: u64, idle: u64) -> Limits {
        Limits {
            header_timeout: Some(Duration::from_millis(header)),
            idle_timeout: Some(Duration::from_millis(idle)),
            body_timeout: None,
            tcp_keepalive: None,
            max_connections: 1,
            http2_max_streams: 1,
        }
    }

    fn kind(activity: &Activity, limits: &Limits) -> Option<Expiry> {
        activity.deadline(limits).map(|(_, why)| why)
    }

    #[test]
    fn deadlines_follow_what_the_connection_is_doing() {
        let l = limits(10_000, 75_000);
        let a = Activity::new();
        assert_eq!(kind(&a, &l), Some(Expiry::Idle), "accepted, silent: idle");
        a.on_read(b"GET / HT");
        assert_eq!(
            kind(&a, &l),
            Some(Expiry::Header),
            "a request's first bytes: header"
        );
        let request = a.begin(Version::HTTP_11);
        assert_eq!(kind(&a, &l), None, "a request in progress never expires");
        a.on_read(b"more");
        assert_eq!(kind(&a, &l), None);
        drop(request);
        assert_eq!(kind(&a, &l), Some(Expiry::Idle), "answered: idle again");
        let (at, _) = a.deadline(&l).expect("a deadline");
        assert!(
            at > Instant::now() + Duration::from_secs(60),
            "idle counts from the answer"
        );
    }

    #[test]
    fn http2_connections_only_expire_when_idle() {
        let l = limits(10_000, 75_000);
        let a = Activity::new();
        a.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert!(a.is_http2());
        assert_eq!(kind(&a, &l), Some(Expiry::Idle));
        let two = (a.begin(Version::HTTP_2), a.begin(Version::HTTP_2));
        drop(two.0);
        assert_eq!(kind(&a, &l), None, "one stream still open");
        drop(two.1);
        assert_eq!(kind(&a, &l), Some(Expiry::Idle));
    }

    #[tokio::test]
    async fn the_watchdog_fires_at_the_idle_deadline() {
        let a = Activity::new();
        let why = tokio::time::timeout(Duration::from_secs(5), watchdog(a, limits(10, 20)))
            .await
            .expect("expires within the bound");
        assert_eq!(why, Expiry::Idle);
    }
}
