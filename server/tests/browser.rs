//! The chat page and the race page in a real headless Chromium: `web/test/browser.mjs` (pinned
//! `playwright-core`, pointed at the system's Chromium) against two `chat-server` binaries on
//! 127.0.0.1:0, one of them without the socket.io client. When the script prints `RESTART`, this
//! test restarts that server on the same port and answers `RESTARTED`.
//!
//! Chromium is required, never skipped: without it the test fails and says what to install.
//! Screenshots go to `$PUSHPOLL_SCREENSHOTS` (relative to the repository root) when it is set,
//! else to a temporary folder; `reports/screenshots/` holds the ones shown in the README:
//! `PUSHPOLL_SCREENSHOTS=reports/screenshots cargo test -p chat-server --test browser`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::{Instant, timeout};

/// Bound on the whole Node script (it takes about 30 s).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(150);
const SERVER_DEADLINE: Duration = Duration::from_secs(10);

const SCREENSHOTS: [&str; 5] = [
    "chat-push.png",
    "chat-poll.png",
    "race.png",
    "chat-no-client.png",
    "chat-after-restart.png",
];

const CHECKS: [&str; 13] = [
    "history shows on opening",
    "push and poll pages see each other's messages, push first",
    "each page shows its round trip",
    "an <img onerror> message shows as text and runs nothing",
    "race: every door connects",
    "race: every door delivers every message, once",
    "race: chart, p50 and request counters update live",
    "race: push beats polling",
    "race: message text stays text",
    "without the socket.io client the chat page says so and long-polls",
    "without the socket.io client the race page says so and races the other doors",
    "pages left open across a server restart reconnect and show what they missed",
    "no page threw or opened a dialog",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the server crate sits in the workspace")
        .to_path_buf()
}

/// `$PUSHPOLL_CHROMIUM`, else the first Chromium or Chrome on `PATH`; fails saying what to install.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("PUSHPOLL_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PUSHPOLL_CHROMIUM={} is not a file",
            path.display()
        );
        return path;
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome-stable",
        "google-chrome",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "the browser tests need headless Chromium and found none on PATH ({names:?}). Install it: \
         `apt-get install -y chromium` on Debian (`chromium-browser` on some other distributions), \
         or set PUSHPOLL_CHROMIUM to a Chromium or Chrome executable. CI (.ci/run) installs it."
    )
}

/// A `chat-server` child process.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Server {
    async fn start(addr: &str, extra: &[OsString]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--addr", addr, "--shutdown-grace", "1s"])
            .args(extra)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the chat-server binary starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let line = timeout(SERVER_DEADLINE, stdout.next_line())
            .await
            .expect("chat-server announces its address within 10 s")
            .expect("chat-server stdout")
            .expect("chat-server prints a line");
        let addr = line
            .strip_prefix("chat-server listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line}"));
        Server {
            child,
            addr,
            _stdout: stdout,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM (a graceful shutdown, as a deploy does), then waits for the exit.
    async fn stop(mut self) {
        let pid = self.child.id().expect("the server is running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("`kill` runs");
        assert!(status.success(), "kill -TERM {pid}");
        let exited = timeout(SERVER_DEADLINE, self.child.wait()).await;
        assert!(
            exited.is_ok_and(|s| s.is_ok_and(|s| s.success())),
            "chat-server exits cleanly within 10 s of SIGTERM"
        );
    }

    /// Stops the server and starts a new one on the same port (retrying the bind for a while).
    async fn restart(self, extra: &[OsString]) -> Server {
        let addr = self.addr;
        self.stop().await;
        let end = Instant::now() + SERVER_DEADLINE;
        loop {
            let probe = std::net::TcpListener::bind(addr);
            if probe.is_ok() || Instant::now() >= end {
                drop(probe);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let server = Server::start(&addr.to_string(), extra).await;
        assert_eq!(server.addr, addr, "restarted on the same port");
        server
    }
}

#[tokio::test]
async fn the_pages_work_in_a_real_browser() {
    let chromium = chromium();
    let web = repo_root().join("web");
    assert!(
        web.join("node_modules/playwright-core/package.json")
            .exists(),
        "web/node_modules/playwright-core is missing: run the tests with `scripts/test` (it runs `npm ci --prefix web`)"
    );
    let screenshots = match std::env::var_os("PUSHPOLL_SCREENSHOTS") {
        Some(dir) => repo_root().join(dir),
        None => std::env::temp_dir().join(format!("pushpoll-screenshots-{}", std::process::id())),
    };
    for name in SCREENSHOTS {
        let _ = std::fs::remove_file(screenshots.join(name));
    }

    let mut server = Server::start("127.0.0.1:0", &[]).await;
    // A web folder without node_modules: the server has no socket.io client to serve.
    let empty_web = tempfile::tempdir().expect("a temporary folder");
    let no_client_flags = [
        OsString::from("--web-dir"),
        empty_web.path().as_os_str().to_owned(),
    ];
    let no_client = Server::start("127.0.0.1:0", &no_client_flags).await;

    let mut node = Command::new("node")
        .arg(web.join("test/browser.mjs"))
        .arg("--url")
        .arg(server.url())
        .arg("--no-client-url")
        .arg(no_client.url())
        .arg("--screenshots")
        .arg(&screenshots)
        .env("PUSHPOLL_CHROMIUM", &chromium)
        .current_dir(&web)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("`node` runs (install Node.js 20 or newer)");
    let mut stdin = node.stdin.take().expect("piped stdin");
    let mut stdout = BufReader::new(node.stdout.take().expect("piped stdout")).lines();
    let mut stderr = node.stderr.take().expect("piped stderr");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let end = Instant::now() + SCRIPT_DEADLINE;
    let mut lines = Vec::new();
    let mut restarts = 0;
    loop {
        let line = timeout(end - Instant::now(), stdout.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!("browser.mjs finishes within {SCRIPT_DEADLINE:?}; it printed {lines:?}")
            })
            .expect("browser.mjs stdout");
        match line.as_deref() {
            None => break,
            Some("RESTART") => {
                assert!(restarts < 3, "browser.mjs asks for at most a few restarts");
                restarts += 1;
                server = server.restart(&[]).await;
                stdin
                    .write_all(b"RESTARTED\n")
                    .await
                    .expect("answer browser.mjs");
            }
            Some(other) => lines.push(other.to_owned()),
        }
    }
    let status = timeout(SERVER_DEADLINE, node.wait())
        .await
        .expect("node exits after closing its stdout")
        .expect("node status");
    let stderr = stderr.await.expect("stderr reader");
    assert!(
        status.success(),
        "browser.mjs failed ({status}):\n{}\n{stderr}",
        lines.join("\n")
    );
    let summary: Value = serde_json::from_str(lines.last().map_or("", String::as_str))
        .unwrap_or_else(|e| panic!("a JSON summary as the last line ({e}): {lines:?}"));
    println!("{summary:#}");

    let checks: Vec<&str> = summary["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(checks, CHECKS, "every browser check ran, in order");
    assert_eq!(restarts, 1, "the server was restarted once");
    for name in SCREENSHOTS {
        let png = std::fs::read(screenshots.join(name))
            .unwrap_or_else(|e| panic!("screenshot {name} in {}: {e}", screenshots.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
    }
    if std::env::var_os("PUSHPOLL_SCREENSHOTS").is_none() {
        let _ = std::fs::remove_dir_all(&screenshots);
    }
    server.stop().await;
    no_client.stop().await;
}
