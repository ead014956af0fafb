//! The accept side: TCP_NODELAY on every connection, and exact byte counts at the connection
//! (request and response headers, bodies, WebSocket handshakes and frames alike).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// A `TcpListener` for `axum::serve` that wraps each accepted stream in a [`CountingStream`].
pub struct CountingListener {
    inner: TcpListener,
    accepted: IntCounter,
    received: IntCounter,
    sent: IntCounter,
}

impl CountingListener {
    pub fn new(inner: TcpListener, metrics: &Metrics) -> Self {
        CountingListener {
            inner,
            accepted: metrics.tcp_connections_accepted.clone(),
            received: metrics.tcp_bytes_received.clone(),
            sent: metrics.tcp_bytes_sent.clone(),
        }
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = CountingStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, "could not set TCP_NODELAY: {e}");
                    }
                    self.accepted.inc();
                    let io = CountingStream::new(stream, self.received.clone(), self.sent.clone());
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

/// Where a [`CountingStream`] adds the bytes it moves. The server tallies into Prometheus
/// counters; the load generator, which counts the other end of the same connections, into its
/// own atomics — one stream type, so both sides count the same way.
pub trait ByteTally {
    fn add_read(&self, n: u64);
    fn add_written(&self, n: u64);
}

impl<T: ByteTally + ?Sized> ByteTally for std::sync::Arc<T> {
    fn add_read(&self, n: u64) {
        (**self).add_read(n)
    }
    fn add_written(&self, n: u64) {
        (**self).add_written(n)
    }
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

/// A stream that adds every byte read and written to a [`ByteTally`].
pub struct CountingStream<S, T = CounterPair> {
    inner: S,
    tally: T,
}

impl<S> CountingStream<S, CounterPair> {
    pub fn new(inner: S, received: IntCounter, sent: IntCounter) -> Self {
        CountingStream::with_tally(inner, CounterPair { received, sent })
    }
}

impl<S, T: ByteTally> CountingStream<S, T> {
    pub fn with_tally(inner: S, tally: T) -> Self {
        CountingStream { inner, tally }
    }
}

impl<S: AsyncRead + Unpin, T: ByteTally + Unpin> AsyncRead for CountingStream<S, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            self.tally.add_read((buf.filled().len() - before) as u64);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin, T: ByteTally + Unpin> AsyncWrite for CountingStream<S, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.tally.add_written(n as u64);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            self.tally.add_written(n as u64);
        }
        result
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_bytes_both_ways() {
        let (a, mut b) = tokio::io::duplex(64);
        let received = IntCounter::new("r", "r").expect("valid");
        let sent = IntCounter::new("s", "s").expect("valid");
        let mut counted = CountingStream::new(a, received.clone(), sent.clone());
        counted.write_all(b"hello").await.expect("write");
        b.write_all(b"abc").await.expect("write");
        let mut buf = [0u8; 3];
        counted.read_exact(&mut buf).await.expect("read");
        assert_eq!((received.get(), sent.get()), (3, 5));
    }
}
