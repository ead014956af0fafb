//! The server under test: a chat server started as a child process (its CPU and memory are its
//! own), or any server named with `--target` (loopback only unless `--allow-remote`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::net::TargetAddr;

/// How long a child server may take to print its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Lines of the child's stderr kept to explain its death.
const STDERR_TAIL_LINES: usize = 20;
/// The line the chat server prints once it listens.
const LISTENING_PREFIX: &str = "listening on http://";

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--target `{0}` is not an http(s)://HOST:PORT URL (ws:// and wss:// also do)")]
    BadUrl(String),
    #[error(
        "--target {host} is not a loopback address: measuring a remote server over a shared network also measures the network; pass --allow-remote if that is what you want"
    )]
    Remote { host: String },
    #[error("cannot resolve --target host `{host}`: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot start the chat server `{exe}`: {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the chat server child did not announce its address within {STARTUP_TIMEOUT:?}{stderr}"
    )]
    Startup { stderr: String },
    #[error(transparent)]
    Http(#[from] crate::net::HttpError),
    #[error("--target lists the node `{0}` twice: name each node of the chat once (URL1,URL2,…)")]
    Duplicate(String),
    #[error("--target `{0}` has an empty entry: name the nodes as URL1,URL2,…")]
    EmptyEntry(String),
}

/// A parsed `--target`: host (as written, for the `Host` header), port, and TLS or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    pub host: String,
    pub port: u16,
    /// `https://` or `wss://`: every connection (every door) is TLS.
    pub tls: bool,
}

impl TargetUrl {
    pub fn parse(url: &str) -> Result<TargetUrl, TargetError> {
        let bad = || TargetError::BadUrl(url.to_string());
        let uri: http::Uri = url.parse().map_err(|_| bad())?;
        let tls = match uri.scheme_str() {
            Some("http" | "ws") => false,
            Some("https" | "wss") => true,
            _ => return Err(bad()),
        };
        if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(bad());
        }
        let host = uri.host().ok_or_else(bad)?.to_string();
        Ok(TargetUrl {
            host,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            tls,
        })
    }

    /// `host:port` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Resolves the host; refuses non-loopback addresses unless `allow_remote`.
    pub async fn resolve(&self, allow_remote: bool) -> Result<SocketAddr, TargetError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, self.port))
            .await
            .map_err(|source| TargetError::Resolve {
                host: self.host.clone(),
                source,
            })?
            .collect();
        let first = addrs.first().copied().ok_or_else(|| TargetError::Resolve {
            host: self.host.clone(),
            source: std::io::Error::other("no address"),
        })?;
        if !allow_remote && !addrs.iter().all(|a| a.ip().is_loopback()) {
            return Err(TargetError::Remote {
                host: self.host.clone(),
            });
        }
        Ok(first)
    }
}

/// A chat server running as a child process of the generator. Killed when dropped.
pub struct ChildServer {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    /// `Some(status)` once the child has exited.
    exited: watch::Receiver<Option<ExitStatusText>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    kill: tokio_util::sync::CancellationToken,
    /// The write end of the child's stdin, held open while the child should live.
    _lifeline: Option<tokio::process::ChildStdin>,
}

/// A child's exit, rendered once (ExitStatus is not Clone on every platform).
pub type ExitStatusText = String;

impl ChildServer {
    /// Starts `exe serve-chat --addr 127.0.0.1:0 [extra…]` and waits for its address.
    pub async fn spawn(exe: &Path, extra_args: &[String]) -> Result<ChildServer, TargetError> {
        let mut child = Command::new(exe)
            .arg("serve-chat")
            .args(["--addr", "127.0.0.1:0"])
            .args(extra_args)
            // The child serves until this pipe closes: if the generator dies, so does its server.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // A group of its own: a terminal's Ctrl-C interrupts the generator (which then writes
            // partial results and stops the child), not the server under measurement.
            .process_group(0)
            .spawn()
            .map_err(|source| TargetError::Spawn {
                exe: exe.to_path_buf(),
                source,
            })?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(keep_tail(stderr, stderr_tail.clone()));
        }
        let stdout = child.stdout.take().expect("stdout was piped");
        let addr = match tokio::time::timeout(STARTUP_TIMEOUT, read_address(stdout)).await {
            Ok(Some(addr)) => addr,
            _ => {
                let _ = child.kill().await;
                return Err(TargetError::Startup {
                    stderr: render_tail(&stderr_tail),
                });
            }
        };
        let pid = child.id();
        let lifeline = child.stdin.take();
        let (exited_tx, exited) = watch::channel(None);
        let kill = tokio_util::sync::CancellationToken::new();
        tokio::spawn(watch_child(child, exited_tx, kill.clone()));
        Ok(ChildServer {
            addr,
            pid,
            exited,
            stderr_tail,
            kill,
            _lifeline: lifeline,
        })
    }

    /// Resolves when the child exits, with its status and the tail of its stderr.
    pub async fn wait_exit(&self) -> String {
        let mut exited = self.exited.clone();
        let status = match exited.wait_for(|s| s.is_some()).await {
            Ok(s) => s.clone().unwrap_or_default(),
            Err(_) => "unknown status".to_string(),
        };
        format!(
            "chat server child exited ({status}){}",
            render_tail(&self.stderr_tail)
        )
    }

    pub fn target_addr(&self) -> Result<TargetAddr, TargetError> {
        Ok(TargetAddr::new(self.addr, &self.addr.to_string())?)
    }

    /// Stops the child (SIGKILL: its numbers were already read) and waits for it to exit.
    pub async fn stop(self) {
        self.kill.cancel();
        let mut exited = self.exited.clone();
        let _ = exited.wait_for(|s| s.is_some()).await;
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill.cancel();
    }
}

/// Reads stdout until the listening line; then keeps draining it so the child never blocks.
async fn read_address(stdout: impl AsyncRead + Unpin + Send + 'static) -> Option<SocketAddr> {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(addr) = parse_listening_line(&line) {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Some(addr);
        }
    }
    None
}

/// `chat-server listening on http://127.0.0.1:4321` → the address.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once(LISTENING_PREFIX)?;
    rest.split_whitespace()
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

async fn keep_tail(stderr: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

fn render_tail(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner());
    if tail.is_empty() {
        String::new()
    } else {
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!("; its last stderr lines:\n{}", lines.join("\n"))
    }
}

async fn watch_child(
    mut child: Child,
    exited: watch::Sender<Option<ExitStatusText>>,
    kill: tokio_util::sync::CancellationToken,
) {
    let status: std::io::Result<ExitStatus> = tokio::select! {
        s = child.wait() => s,
        _ = kill.cancelled() => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let text = match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("wait failed: {e}"),
    };
    exited.send_replace(Some(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_target_urls() {
        let t = TargetUrl::parse("http://127.0.0.1:3000").expect("url");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 3000));
        assert_eq!(TargetUrl::parse("http://localhost/").expect("url").port, 80);
        let t = TargetUrl::parse("https://localhost").expect("url");
        assert_eq!((t.port, t.tls), (443, true));
        assert!(TargetUrl::parse("wss://localhost:8443").expect("url").tls);
        assert!(!TargetUrl::parse("ws://localhost:8443").expect("url").tls);
        for bad in ["127.0.0.1:3000", "http://x:1/path", "ftp://a"] {
            assert!(TargetUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn refuses_remote_targets_unless_allowed() {
        let t = TargetUrl::parse("http://192.0.2.1:3000").expect("url");
        let err = t.resolve(false).await.expect_err("remote");
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(t.resolve(true).await.is_ok());
        let local = TargetUrl::parse("http://127.0.0.1:9").expect("url");
        assert!(local.resolve(false).await.is_ok());
    }

    #[test]
    fn finds_the_listening_line() {
        assert_eq!(
            parse_listening_line("chat-server listening on http://127.0.0.1:4321"),
            Some("127.0.0.1:4321".parse().expect("addr"))
        );
        assert_eq!(
            parse_listening_line("listening on http://127.0.0.1:5/"),
            Some("127.0.0.1:5".parse().expect("addr"))
        );
        assert_eq!(parse_listening_line("starting"), None);
    }
}
