//! A real `redis-server` on a free port of 127.0.0.1, without persistence, killed when dropped,
//! and chat nodes sharing it (`loadgen serve-chat --redis URL`, child processes). Needs Debian's
//! `redis-server` on PATH (`scripts/test` installs it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::parts::ChildServer;

pub struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` on a port that was free a moment ago and waits until it answers PING.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): install Debian's package as root \
                     (apt-get install -y redis-server) or run scripts/test, which installs it"
                )
            });
        let server = RedisServer { port, child };
        let end = Instant::now() + Duration::from_secs(10);
        while !server.answers_ping() {
            assert!(
                Instant::now() < end,
                "redis-server did not answer PING in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok();
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// `count` chat nodes (`exe serve-chat --redis URL`, child processes) sharing `redis`.
pub async fn nodes(exe: &Path, redis: &RedisServer, count: usize) -> Vec<ChildServer> {
    let mut nodes = Vec::new();
    for _ in 0..count {
        let args = ["--redis".to_string(), redis.url()];
        nodes.push(ChildServer::spawn(exe, &args).await.expect("node starts"));
    }
    nodes
}
