//! Server memory per idle connection, one door at a time.
//!
//! ```sh
//! cargo build --release -p chat-server --example idle_memory
//! target/release/examples/idle_memory --kind ws --connections 10000
//! ```
//!
//! Starts `chat-server` (next to this example's directory, or `--server PATH`) on 127.0.0.1 with
//! port 0, opens `--base` connections of one kind and reads the server's resident memory
//! (`VmRSS`), opens the rest up to `--connections` and reads it again: the figure is the growth
//! divided by the connections added, so the process's own memory and whatever the first
//! connections warm up (thread stacks, lazily built tables) are subtracted. Kinds:
//!
//! - `ws`: a Socket.IO WebSocket (`/socket.io/?EIO=4&transport=websocket`), connected to `/`
//!   (open packet, `40`, the connect ack), then silent;
//! - `sse`: `GET /events`, held after the greeting;
//! - `poll`: a keep-alive HTTP/1.1 connection after one answered `GET /messages?since=0`;
//! - `longpoll`: `GET /messages?since=LATEST&wait=50s`, waiting;
//! - `tcp`: a TCP connection that sent nothing (the connection layer alone).
//!
//! Everything is over loopback; the whole run takes well under the server's ping interval, so the
//! silent clients are never dropped. The client process needs 10,000 open files, and the server
//! as many: run it where `ulimit -n` is at least 20,000 (it is raised to the hard limit).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Ws,
    Sse,
    Poll,
    Longpoll,
    Tcp,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    kind: Kind,
    /// Connections held at the end.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Connections held when the baseline is read.
    #[arg(long, default_value_t = 500)]
    base: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// The chat-server binary (default: `../chat-server` from this example).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
    /// Extra flags for the server (repeat, e.g. `--server-arg=--socket-buffer=64`).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Use a server already running at this address (e.g. under a heap profiler) instead.
    #[arg(long, requires = "pid")]
    attach: Option<SocketAddr>,
    /// The process id of the `--attach` server, whose memory is read.
    #[arg(long)]
    pid: Option<u32>,
    /// Keep the connections open this long after measuring (to take a heap snapshot).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    hold: Duration,
}

/// Time allowed for one connection's handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.base >= args.connections {
        bail!("--base must be below --connections");
    }
    rlimit::increase_nofile_limit(u64::MAX).ok();
    if let (Some(addr), Some(pid)) = (args.attach, args.pid) {
        return run(&args, addr, pid);
    }
    let server = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|d| d.parent())
            .context("no parent directory")?
            .join("chat-server"),
    };
    let mut child = Command::new(&server)
        .args(["--addr", "127.0.0.1:0"])
        .args(&args.server_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", server.display()))?;
    let result = measure(&args, &mut child);
    child.kill().ok();
    child.wait().ok();
    result
}

fn measure(args: &Args, child: &mut Child) -> anyhow::Result<()> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr: SocketAddr = line
        .trim()
        .rsplit("http://")
        .next()
        .context("no address")?
        .parse()
        .with_context(|| format!("server said {line:?}"))?;
    run(args, addr, child.id())
}

fn run(args: &Args, addr: SocketAddr, pid: u32) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let started = Instant::now();
        let mut held = Vec::with_capacity(args.connections);
        let rss_start = rss_kib(pid)?;
        open(args, addr, args.base, &mut held).await?;
        settle().await;
        let rss_base = rss_kib(pid)?;
        open(args, addr, args.connections - args.base, &mut held).await?;
        settle().await;
        let rss_end = rss_kib(pid)?;
        let added = (args.connections - args.base) as f64;
        let per = (rss_end.saturating_sub(rss_base)) as f64 * 1024.0 / added;
        println!(
            "kind {:?}: server RSS {} KiB at start, {} KiB with {} connections, {} KiB with {}; \
             {:.0} bytes ({:.2} KiB) per connection; {:.1} s",
            args.kind,
            rss_start,
            rss_base,
            args.base,
            rss_end,
            args.connections,
            per,
            per / 1024.0,
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(args.hold).await;
        drop(held);
        Ok(())
    })
}

/// Lets the server finish what the last handshakes started before memory is read.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

async fn open(
    args: &Args,
    addr: SocketAddr,
    n: usize,
    held: &mut Vec<TcpStream>,
) -> anyhow::Result<()> {
    let mut left = n;
    while left > 0 {
        let batch = left.min(args.parallel);
        let mut tasks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let kind = args.kind;
            tasks.push(tokio::spawn(async move {
                tokio::time::timeout(HANDSHAKE, connect(kind, addr))
                    .await
                    .context("handshake timed out")?
            }));
        }
        for t in tasks {
            held.push(t.await??);
        }
        left -= batch;
    }
    Ok(())
}

async fn connect(kind: Kind, addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    match kind {
        Kind::Tcp => {}
        Kind::Ws => {
            let req = format!(
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
                 Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            );
            s.write_all(req.as_bytes()).await?;
            // The 101 answer and the engine.io open packet (`0{...}`).
            read_until(&mut s, b"\"sid\"").await?;
            // `40`, masked with a zero key.
            s.write_all(&[0x81, 0x82, 0, 0, 0, 0, b'4', b'0']).await?;
            // The connect ack `40{"sid":…}`.
            read_until(&mut s, b"40{").await?;
        }
        Kind::Sse => {
            let req = format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            s.write_all(req.as_bytes()).await?;
            read_until(&mut s, b"retry:").await?;
        }
        Kind::Poll => {
            let req = format!("GET /messages?since=0 HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            s.write_all(req.as_bytes()).await?;
            // An empty log answers `[]`.
            read_until(&mut s, b"[]").await?;
        }
        Kind::Longpoll => {
            let req = format!("GET /messages?since=0&wait=50s HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            s.write_all(req.as_bytes()).await?;
        }
    }
    Ok(s)
}

/// Reads until `needle` has been seen (the answers here are small and come in one piece).
async fn read_until(s: &mut TcpStream, needle: &[u8]) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while seen.len() < 64 * 1024 {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("closed before {:?}", String::from_utf8_lossy(needle));
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(needle.len()).any(|w| w == needle) {
            return Ok(());
        }
    }
    bail!("no {:?} in 64 KiB", String::from_utf8_lossy(needle))
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}
