//! A byte-counting proxy in front of the cluster tests' Redis (`pushpoll_testkit::redis`).

/// A TCP proxy in front of Redis that counts every byte each way (the truth the broker's byte
/// counters are held to). Serves until dropped.
pub struct CountingProxy {
    pub port: u16,
    to_redis: std::sync::Arc<std::sync::atomic::AtomicU64>,
    from_redis: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    pub async fn start(redis_port: u16) -> CountingProxy {
        use std::sync::Arc;
        use std::sync::atomic::AtomicU64;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let port = listener.local_addr().expect("addr").port();
        let to_redis = Arc::new(AtomicU64::new(0));
        let from_redis = Arc::new(AtomicU64::new(0));
        let (up, down) = (to_redis.clone(), from_redis.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await
                else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(client_read, server_write, up.clone()));
                tokio::spawn(pipe(server_read, client_write, down.clone()));
            }
        });
        CountingProxy {
            port,
            to_redis,
            from_redis,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Bytes forwarded so far: (to Redis, from Redis).
    pub fn counted(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::SeqCst;
        (self.to_redis.load(SeqCst), self.from_redis.load(SeqCst))
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        count.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
