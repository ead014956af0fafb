//! Shared by the end-to-end tests: a small scenario, an in-process chat server, runs of
//! `run_strategy`, the reference Node.js tutorial server, a fault-injecting chat server
//! ([`faulty`]) and a byte-counting TCP proxy ([`proxy`]).
#![allow(dead_code)] // each test file uses its own subset

pub mod chat_api;
pub mod faulty;
pub mod gate;
pub mod proxy;
pub mod redis;
pub mod tls;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use loadgen::driver::{self, RunHooks};
use loadgen::results::{Outcome, RunResult};
use loadgen::scenario::{Scenario, StrategySpec};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// ~20 clients, 2 senders, 20 messages/s, 2 s measured: small enough for CI, big enough to
/// see loss, duplicates and reordering.
pub fn small_scenario(target: Option<String>) -> Scenario {
    Scenario {
        clients: NonZeroUsize::new(20).expect("nonzero"),
        senders: NonZeroUsize::new(2).expect("nonzero"),
        rate: 20.0,
        arrivals: loadgen::scenario::Arrivals::Even,
        payload_bytes: 0,
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        drain: Duration::from_secs(5),
        connect_rate: 1000.0,
        target,
        allow_remote: false,
        seed: 7,
        access: Default::default(),
        safety: Default::default(),
    }
}

/// [`small_scenario`] against `url`, with the access flags (`--header`, `--login`, `--profile`,
/// TLS trust …) parsed from `flags` as the CLI parses them.
pub fn scenario_with_access(url: &str, flags: &[&str]) -> Scenario {
    use clap::Parser as _;
    let base = ["loadgen", "run", "--target", url];
    let args = base.iter().chain(flags).copied();
    let loadgen::cli::Command::Run(args) = loadgen::cli::Cli::try_parse_from(args)
        .expect("flags parse")
        .command
    else {
        unreachable!("parsed `run`")
    };
    let from_flags = args.scenario.to_scenario().expect("valid scenario");
    Scenario {
        access: from_flags.access,
        ..small_scenario(Some(url.to_string()))
    }
}

/// Hooks for tests: the server child (when one is started) is this crate's `loadgen` binary.
pub fn hooks() -> RunHooks {
    RunHooks {
        server_exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_loadgen"))),
        ..RunHooks::default()
    }
}

pub async fn in_process_server() -> chat_server::RunningServer {
    let config = chat_server::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        ..chat_server::Config::default()
    };
    chat_server::spawn(config)
        .await
        .expect("chat server starts")
}

pub async fn run(spec: &str, scenario: &Scenario) -> RunResult {
    let spec: StrategySpec = spec.parse().expect("valid spec");
    driver::run_strategy(scenario, &spec, &hooks())
        .await
        .expect("run starts")
}

/// Every measured probe reached every receiver exactly once.
pub fn assert_lossless(r: &RunResult) {
    assert_eq!(
        r.outcome,
        Outcome::Completed,
        "{}: {:?}",
        r.label,
        r.outcome
    );
    let d = &r.delivery;
    assert_eq!(
        r.clients.connected, r.clients.planned,
        "{}: {:?}",
        r.label, r.clients
    );
    assert!(d.probes_sent > 0, "{}: nothing sent", r.label);
    assert_eq!(
        d.probes_failed, 0,
        "{}: {:?}",
        r.label, r.traffic.requests.errors
    );
    assert_eq!(
        d.expected,
        d.probes_sent * r.clients.connected,
        "{}",
        r.label
    );
    assert_eq!(d.missing, 0, "{}: {d:?}", r.label);
    assert_eq!(d.delivered, d.expected, "{}", r.label);
    assert_eq!(d.duplicates, 0, "{}", r.label);
    assert_eq!(d.out_of_order, 0, "{}", r.label);
    assert_eq!(d.probes_unanswered, 0, "{}", r.label);
    assert!(d.exactly_once(), "{}: {d:?}", r.label);
    assert_eq!(r.schedule.achieved_sends, d.probes_sent, "{}", r.label);
    assert_eq!(r.schedule.failed_sends, 0, "{}", r.label);
    assert_eq!(r.latency.corrected.censored, 0, "{}", r.label);
    assert_eq!(r.latency.probes, d.probes_sent, "{}", r.label);
    assert_eq!(r.latency.corrected.count, d.delivered, "{}", r.label);
    assert_eq!(r.latency.uncorrected.count, d.delivered, "{}", r.label);
    assert_eq!(r.latency.fanout.count, d.probes_sent, "{}", r.label);
    assert!(
        r.latency.corrected.max_us >= r.latency.corrected.p50_us && r.latency.corrected.p50_us > 0,
        "{}",
        r.label
    );
}

/// A value of `/metrics`, and the bytes this scrape itself put on the wire (request, response).
pub struct Scrape {
    pub text: String,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl Scrape {
    pub fn value(&self, name: &str) -> u64 {
        pushpoll_wire::prometheus::sample(&self.text, name)
            .unwrap_or_else(|| panic!("{name} missing from /metrics")) as u64
    }
}

/// GET /metrics on a raw connection of its own, counting its bytes exactly.
pub async fn scrape(addr: std::net::SocketAddr) -> Scrape {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let text = String::from_utf8_lossy(&resp).into_owned();
    Scrape {
        text,
        request_bytes: req.len() as u64,
        response_bytes: resp.len() as u64,
    }
}

/// The reference Node.js tutorial server (Express 5 + Socket.IO 4), killed when dropped.
pub struct NodeServer {
    pub url: String,
    _child: tokio::process::Child,
}

/// Starts `web/reference/tutorial-server.js` with the pinned packages of `web/node_modules`.
pub async fn tutorial_server() -> NodeServer {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web");
    assert!(
        web.join("node_modules/socket.io").is_dir() && web.join("node_modules/express").is_dir(),
        "web/node_modules is missing the pinned Node packages: run scripts/test (it runs npm ci in web/)"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(web.join("reference/tutorial-server.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("`node` must be installed to test against the reference Socket.IO server");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the tutorial server starts within 20 s")
        .expect("read stdout")
        .expect("the tutorial server prints its address");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    NodeServer { url, _child: child }
}
