//! How much of one SSE stream is waiting in the HTTP connection for a client that does not read.
//!
//! Each chunk an SSE stream hands to hyper is wrapped so that it is counted until hyper drops it,
//! which it does once the chunk is written to the socket. hyper queues body chunks (up to 16 of
//! them and ~400 KB) while the socket does not take them, and pulls several before it writes any,
//! so without this a stalled client cost that much of the server's memory for as long as it
//! stayed connected. With it, a stream waits while too much of it is queued and can tell when its
//! client stopped reading (see `events.rs`).
//!
//! This relies on hyper queueing chunks rather than copying them, which it does for connections
//! that support vectored writes (TCP streams do). Were chunks copied, nothing would count as
//! waiting and hyper's own buffer limit (~400 KB per connection) would be the only bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// At most this many chunks may wait: hyper stops pulling from a body once 16 are queued, and a
/// stream that is not pulled cannot notice that it should end.
pub const MAX_CHUNKS: usize = 12;

/// The counts of one stream's chunks that hyper holds (cheap to clone; shared with the chunks).
#[derive(Clone, Debug, Default)]
pub struct Unsent(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    bytes: AtomicUsize,
    chunks: AtomicUsize,
    /// Chunks written so far (never decreases): progress, however slow.
    written: AtomicU64,
    /// Woken whenever a chunk has been written.
    progress: Notify,
}

impl Unsent {
    /// Bytes handed over and not yet written to the socket.
    pub fn bytes(&self) -> usize {
        self.0.bytes.load(Ordering::Acquire)
    }

    /// Chunks handed over and not yet written to the socket.
    pub fn chunks(&self) -> usize {
        self.0.chunks.load(Ordering::Acquire)
    }

    /// Chunks written since the stream started.
    pub fn written(&self) -> u64 {
        self.0.written.load(Ordering::Acquire)
    }

    /// Completes when a chunk is written after this future was enabled or first polled (enable
    /// it before checking the counts, so that no write falls in between).
    pub fn progress(&self) -> Notified<'_> {
        self.0.progress.notified()
    }

    /// Whether handing over `next` more bytes would leave more than `max` bytes (or more than
    /// [`MAX_CHUNKS`] chunks) waiting. A chunk of any size may go when nothing waits, so one
    /// message larger than `max` still gets through to a client that reads.
    pub fn would_exceed(&self, next: usize, max: usize) -> bool {
        let bytes = self.bytes();
        self.chunks() >= MAX_CHUNKS || (bytes > 0 && bytes.saturating_add(next) > max)
    }

    /// `chunk`, counted until the last copy of it is dropped.
    pub fn track(&self, chunk: Bytes) -> Bytes {
        self.0.bytes.fetch_add(chunk.len(), Ordering::AcqRel);
        self.0.chunks.fetch_add(1, Ordering::AcqRel);
        Bytes::from_owner(Tracked {
            chunk,
            counts: Arc::clone(&self.0),
        })
    }
}

/// A chunk that uncounts itself when dropped.
struct Tracked {
    chunk: Bytes,
    counts: Arc<Counts>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.chunk
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.counts
            .bytes
            .fetch_sub(self.chunk.len(), Ordering::AcqRel);
        self.counts.chunks.fetch_sub(1, Ordering::AcqRel);
        self.counts.written.fetch_add(1, Ordering::AcqRel);
        self.counts.progress.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_count_until_dropped() {
        let unsent = Unsent::default();
        let a = unsent.track(Bytes::from_static(b"hello"));
        let b = unsent.track(Bytes::from(vec![b'x'; 100]));
        assert_eq!((unsent.bytes(), unsent.chunks()), (105, 2));
        let a2 = a.slice(1..3);
        drop(a);
        assert_eq!(unsent.bytes(), 105, "a slice keeps the chunk alive");
        drop(a2);
        assert_eq!(&b[..2], b"xx");
        assert_eq!((unsent.bytes(), unsent.chunks()), (100, 1));
        drop(b);
        assert_eq!((unsent.bytes(), unsent.chunks()), (0, 0));
        assert_eq!(unsent.written(), 2);
    }

    #[tokio::test]
    async fn a_written_chunk_wakes_a_waiter() {
        let unsent = Unsent::default();
        let chunk = unsent.track(Bytes::from_static(b"data"));
        let mut progress = std::pin::pin!(unsent.progress());
        progress.as_mut().enable();
        drop(chunk);
        tokio::time::timeout(std::time::Duration::from_secs(5), progress)
            .await
            .expect("woken by the write");
    }

    #[test]
    fn the_limit_allows_one_large_chunk_but_not_a_backlog() {
        let unsent = Unsent::default();
        assert!(!unsent.would_exceed(1_000_000, 1000), "nothing waits");
        let held = unsent.track(Bytes::from(vec![0; 600]));
        assert!(!unsent.would_exceed(400, 1000));
        assert!(unsent.would_exceed(401, 1000));
        drop(held);
        let many: Vec<Bytes> = (0..MAX_CHUNKS)
            .map(|_| unsent.track(Bytes::from_static(b".")))
            .collect();
        assert!(unsent.would_exceed(1, 1000), "{} chunks wait", many.len());
    }
}
