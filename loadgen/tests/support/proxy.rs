//! A byte oracle: a TCP proxy on 127.0.0.1 that forwards to a server and counts, with its own
//! plain read/write loops, every byte each way and every connection. It shares no code with the
//! counting that loadgen or the chat server do.
//!
//! A connection ends as soon as either side closes it or fails (no half-close: no client here
//! uses it), so the proxy never holds a connection its client has let go.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct Counters {
    /// Bytes read from clients (client → server).
    up: AtomicU64,
    /// Bytes read from the server (server → client).
    down: AtomicU64,
    /// Client connections accepted.
    connections: AtomicU64,
    /// Connections still being forwarded.
    open: AtomicU64,
    /// Upstream connects that failed.
    upstream_failures: AtomicU64,
    closed: Notify,
}

/// What the proxy counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyCounts {
    pub up: u64,
    pub down: u64,
    pub connections: u64,
    pub open: u64,
    pub upstream_failures: u64,
}

pub struct CountingProxy {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on 127.0.0.1 (an ephemeral port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, upstream, counters.clone()));
        CountingProxy {
            addr,
            counters,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counts(&self) -> ProxyCounts {
        let c = &self.counters;
        ProxyCounts {
            up: c.up.load(Relaxed),
            down: c.down.load(Relaxed),
            connections: c.connections.load(Relaxed),
            open: c.open.load(Relaxed),
            upstream_failures: c.upstream_failures.load(Relaxed),
        }
    }

    /// Waits (at most `limit`) until every connection has ended, so the counts are final;
    /// returns the counts either way (`open` says whether it settled).
    pub async fn settle(&self, limit: Duration) -> ProxyCounts {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let closed = self.counters.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.counters.open.load(Relaxed) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, closed).await.is_err() {
                break;
            }
        }
        self.counts()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, counters: Arc<Counters>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        counters.connections.fetch_add(1, Relaxed);
        counters.open.fetch_add(1, Relaxed);
        let counters = counters.clone();
        tokio::spawn(async move {
            forward(client, upstream, &counters).await;
            counters.open.fetch_sub(1, Relaxed);
            counters.closed.notify_waiters();
        });
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, counters: &Counters) {
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(_) => {
            counters.upstream_failures.fetch_add(1, Relaxed);
            return;
        }
    };
    // Forward small writes at once, as both ends do themselves.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    tokio::select! {
        () = pump(&mut client_rd, &mut server_wr, &counters.up) => {}
        () = pump(&mut server_rd, &mut client_wr, &counters.down) => {}
    }
}

/// Copies until end of stream or an error, counting every byte read.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    count: &AtomicU64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        count.fetch_add(n as u64, Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
