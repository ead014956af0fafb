//! The generator's connections count every byte they read or write (headers, bodies, frames,
//! handshakes, TLS records) where it crosses the socket, with the same stream type the server
//! counts its side with ([`pushpoll_wire::count`]).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use pushpoll_wire::count::ByteTally;

use crate::counters::WireCounters;

/// A counted stream, tallied into [`WireCounters`] (writes are client → server, `up`; reads are
/// server → client, `down`).
pub type CountingStream<S> = pushpoll_wire::count::CountingStream<S, Arc<WireCounters>>;

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
        let mut s = CountingStream::new(a, wire.clone());
        s.write_all(b"hello").await.expect("write");
        b.write_all(b"abc").await.expect("write");
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).await.expect("read");
        assert_eq!(wire.snapshot(), (5, 3));
    }
}
