//! Bytes counted where they cross the socket: one stream type used by the server (tallied into
//! its Prometheus counters) and by the load generator (into its own atomics), so both ends of a
//! connection count the same way — headers, bodies, WebSocket frames and TLS records alike.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// A stream that adds every byte read and written to a [`ByteTally`].
pub struct CountingStream<S, T> {
    inner: S,
    tally: T,
}

impl<S, T: ByteTally> CountingStream<S, T> {
    pub fn new(inner: S, tally: T) -> Self {
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
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Default)]
    struct Pair(AtomicU64, AtomicU64);

    impl ByteTally for Pair {
        fn add_read(&self, n: u64) {
            self.0.fetch_add(n, Relaxed);
        }
        fn add_written(&self, n: u64) {
            self.1.fetch_add(n, Relaxed);
        }
    }

    #[tokio::test]
    async fn counts_bytes_both_ways() {
        let (a, mut b) = tokio::io::duplex(64);
        let tally = std::sync::Arc::new(Pair::default());
        let mut counted = CountingStream::new(a, tally.clone());
        counted.write_all(b"hello").await.expect("write");
        b.write_all(b"abc").await.expect("write");
        let mut buf = [0u8; 3];
        counted.read_exact(&mut buf).await.expect("read");
        assert_eq!((tally.0.load(Relaxed), tally.1.load(Relaxed)), (3, 5));
    }
}
