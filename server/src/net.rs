//! The accept side: TCP_NODELAY and TCP keepalive on every connection, and exact byte counts at
//! the connection (request and response headers, bodies, WebSocket handshakes and frames alike).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use prometheus::IntCounter;
use pushpoll_wire::count::{ByteTally, CountingStream};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// A `TcpListener` that sets socket options on each accepted stream and wraps it in a
/// [`CountedStream`].
pub struct CountingListener {
    inner: TcpListener,
    accepted: IntCounter,
    received: IntCounter,
    sent: IntCounter,
    keepalive: Option<Duration>,
}

/// TCP keepalive probes after the first: every [`KEEPALIVE_INTERVAL`], [`KEEPALIVE_PROBES`] of
/// them before the kernel gives up on a silent peer.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_PROBES: u32 = 5;

impl CountingListener {
    pub fn new(inner: TcpListener, metrics: &Metrics) -> Self {
        CountingListener {
            inner,
            accepted: metrics.tcp_connections_accepted.clone(),
            received: metrics.tcp_bytes_received.clone(),
            sent: metrics.tcp_bytes_sent.clone(),
            keepalive: None,
        }
    }

    /// Turns on TCP keepalive for accepted connections: the first probe after `idle` without
    /// traffic (so a peer that vanished, e.g. a phone that lost its network, is noticed even while
    /// a long poll or an SSE stream waits).
    pub fn with_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }
}

/// Sets TCP keepalive on `stream` (see [`CountingListener::with_keepalive`]).
pub fn set_keepalive(stream: &TcpStream, idle: Duration) -> io::Result<()> {
    let params = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket2::SockRef::from(stream).set_tcp_keepalive(&params)
}

impl axum::serve::Listener for CountingListener {
    type Io = CountedStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, "could not set TCP_NODELAY: {e}");
                    }
                    if let Some(idle) = self.keepalive
                        && let Err(e) = set_keepalive(&stream, idle)
                    {
                        tracing::debug!(%peer, "could not set TCP keepalive: {e}");
                    }
                    self.accepted.inc();
                    let io = counted(stream, self.received.clone(), self.sent.clone());
                    return (io, peer);
                }
                Err(e) if is_per_connection(&e) => {}
                Err(e) => {
                    // Typically EMFILE: out of file descriptors. Back off briefly instead of spinning.
                    tracing::error!(
                        "accept failed: {e} (raise the open-files limit with `ulimit -n`)"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The server's tally: bytes received and sent, as two Prometheus counters.
#[derive(Clone)]
pub struct CounterPair {
    pub received: IntCounter,
    pub sent: IntCounter,
}

impl ByteTally for CounterPair {
    fn add_read(&self, n: u64) {
        self.received.inc_by(n)
    }
    fn add_written(&self, n: u64) {
        self.sent.inc_by(n)
    }
}

/// A server connection, counted into its [`CounterPair`].
pub type CountedStream<S> = CountingStream<S, CounterPair>;

/// Wraps `inner` so its bytes are added to `received` and `sent`.
pub fn counted<S>(inner: S, received: IntCounter, sent: IntCounter) -> CountedStream<S> {
    CountingStream::new(inner, CounterPair { received, sent })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn keepalive_settings_reach_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (server, _) = accepted.expect("accept");
        set_keepalive(&server, Duration::from_secs(42)).expect("keepalive");
        let socket = socket2::SockRef::from(&server);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            socket.tcp_keepalive_time().expect("idle"),
            Duration::from_secs(42)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().expect("interval"),
            KEEPALIVE_INTERVAL
        );
        assert_eq!(
            socket.tcp_keepalive_retries().expect("probes"),
            KEEPALIVE_PROBES
        );
        drop(client);
    }

    #[tokio::test]
    async fn counts_bytes_both_ways() {
        let (a, mut b) = tokio::io::duplex(64);
        let received = IntCounter::new("r", "r").expect("valid");
        let sent = IntCounter::new("s", "s").expect("valid");
        let mut counted = counted(a, received.clone(), sent.clone());
        counted.write_all(b"hello").await.expect("write");
        b.write_all(b"abc").await.expect("write");
        let mut buf = [0u8; 3];
        counted.read_exact(&mut buf).await.expect("read");
        assert_eq!((received.get(), sent.get()), (3, 5));
    }
}
