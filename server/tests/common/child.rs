//! The `chat-server` binary as a child process, so its memory is its own (`/proc/PID/status`).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

pub struct ChildServer {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
}

impl ChildServer {
    /// Starts `chat-server --addr 127.0.0.1:0 ARGS…` and waits for its `listening on` line.
    pub async fn start(args: &[&str]) -> ChildServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chat-server starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line))
            .await
            .expect("the server announces its address within 10 s")
            .expect("stdout");
        let addr = line
            .trim()
            .strip_prefix("chat-server listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .expect("an address");
        ChildServer {
            child,
            _stdout: stdout,
            addr,
        }
    }

    /// The child's resident memory (VmRSS), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.id().expect("the child is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line");
        kb * 1024
    }
}
