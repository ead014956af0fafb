//! A TCP stream that adds every byte it reads or writes to shared counters, so the bytes on the
//! wire (headers, bodies, frames, handshakes) are measured where they cross the socket.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use chat_server::net::ByteTally;

use crate::counters::WireCounters;

/// The generator's connections: the server's counting stream, tallied into [`WireCounters`]
/// (writes are client → server, `up`; reads are server → client, `down`).
pub type CountingStream<S> = chat_server::net::CountingStream<S, Arc<WireCounters>>;

impl ByteTally for WireCounters {
    fn add_read(&self, n: u64) {
        self.down.fetch_add(n, Relaxed);
        if let Some(p) = &self.parent {
            p.add_read(n);
        }
    }
    fn add_written(&self, n: u64) {
        self.up.fetch_add(n, Relaxed);
        if let Some(p) = &self.parent {
            p.add_written(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_both_directions() {
        let (a, mut b) = tokio::io::duplex(64);
        let wire = Arc::new(WireCounters::default());
        let mut s = CountingStream::with_tally(a, wire.clone());
        s.write_all(b"hello").await.expect("write");
        b.write_all(b"abc").await.expect("write");
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).await.expect("read");
        assert_eq!(wire.snapshot(), (5, 3));
    }
}
