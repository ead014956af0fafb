//! Several nodes of one chat (`--target URL1,URL2,…`): receivers and senders spread over them
//! round-robin, as a load balancer would (receiver `i` → node `i mod K`, sender `j` → node
//! `j mod K`), and what each node served, counted apart.
//!
//! There is still one recorder: a probe posted to node A and delivered through node B is
//! measured like any other. Per node this module counts the receivers and senders placed on
//! it, the owed first deliveries received through it (and their latency), what its receivers
//! were owed and missed, their requests, and the bytes of every connection to it; with a
//! local node's process found, its CPU and memory. One target keeps the single-node path
//! exactly as it was (no `nodes` in the results).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

pub use pushpoll_report::nodes::NodeResult;

use crate::counters::{Counters, WireCounters};
use crate::net::TargetAddr;
use crate::resources::{self, ProcSample};
use crate::results::new_latency_histogram;
use crate::scenario::Scenario;
use crate::target::{TargetError, TargetUrl};

/// One `--target` list entry, reached and checked (before the run's context exists).
pub struct NodeTarget {
    pub url: String,
    pub target: TargetAddr,
    /// Its process, when it listens on this machine and /proc can be read.
    pub pid: Option<u32>,
}

/// Splits `--target URL1,URL2,…`; refuses empty entries and a node listed twice.
pub fn parse_list(list: &str) -> Result<Vec<(String, TargetUrl)>, TargetError> {
    let mut out: Vec<(String, TargetUrl)> = Vec::new();
    for url in list.split(',').map(str::trim) {
        if url.is_empty() {
            return Err(TargetError::EmptyEntry(list.to_string()));
        }
        let parsed = TargetUrl::parse(url)?;
        if out.iter().any(|(_, p)| *p == parsed) {
            return Err(TargetError::Duplicate(url.to_string()));
        }
        out.push((url.to_string(), parsed));
    }
    Ok(out)
}

/// Why a `--target` (or a node of a list) could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
}

/// Parses, resolves and reaches every node of a `--target` list, each as a single `--target`
/// is (loopback unless `--allow-remote`, the same access and safety checks).
pub async fn reach_all(list: &str, scenario: &Scenario) -> Result<Vec<NodeTarget>, ReachError> {
    // Every entry parsed and resolved (duplicates refused) before any node is contacted.
    let mut resolved: Vec<(String, TargetUrl, SocketAddr)> = Vec::new();
    for (url, parsed) in parse_list(list)? {
        let addr = parsed.resolve(scenario.allow_remote).await?;
        if resolved.iter().any(|(_, _, a)| *a == addr) {
            return Err(TargetError::Duplicate(url).into());
        }
        resolved.push((url, parsed, addr));
    }
    let mut nodes = Vec::new();
    for (url, parsed, addr) in resolved {
        let (target, pid) = reach(&parsed, addr, scenario).await?;
        // One refusal guard for the run, as with one target: 429s and 5xx of every node count.
        let target = match nodes.first() {
            Some(NodeTarget { target: first, .. }) => {
                let mut access = Arc::unwrap_or_clone(target.access.clone());
                access.guard = first.access.guard.clone();
                target.with_access(access)
            }
            None => target,
        };
        nodes.push(NodeTarget { url, target, pid });
    }
    Ok(nodes)
}

/// Reaches one resolved `--target` (a single one, or one node of a list): its address with the
/// scenario's access (TLS, headers, login, profile), and the pid to measure it by when it is a
/// local process. A process other than this one only: an in-process test server would be
/// counted twice.
pub async fn reach(
    parsed: &TargetUrl,
    addr: SocketAddr,
    scenario: &Scenario,
) -> Result<(TargetAddr, Option<u32>), ReachError> {
    let target = TargetAddr::new(addr, &parsed.authority()).map_err(TargetError::from)?;
    let target = crate::access::reach(
        target,
        &parsed.host,
        parsed.tls,
        &scenario.access,
        &scenario.safety,
    )
    .await?;
    let pid = addr
        .ip()
        .is_loopback()
        .then(|| crate::local_pid::pid_listening_on(addr.port()))
        .flatten()
        .filter(|pid| *pid != std::process::id());
    Ok((target, pid))
}

/// One node's live tallies.
pub struct Node {
    pub url: String,
    pub target: Arc<TargetAddr>,
    pid: Option<u32>,
    /// Receivers' and senders' connections to this node (each also adds to the run's total).
    pub receiver_wire: Arc<WireCounters>,
    pub sender_wire: Arc<WireCounters>,
    receivers: AtomicU64,
    senders: AtomicU64,
    connected: AtomicU64,
    requests: AtomicU64,
    delivered: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    /// Its receivers' entries in the recorder's membership spans.
    spans: Mutex<Vec<usize>>,
    /// Requests, bytes and CPU over the measured window (set once it ended).
    window: Mutex<Option<NodeWindow>>,
}

/// A node's counters at one instant.
#[derive(Debug, Clone, Default)]
pub struct NodeSample {
    requests: u64,
    up: u64,
    down: u64,
    cpu: Option<ProcSample>,
}

#[derive(Debug, Clone)]
struct NodeWindow {
    requests: u64,
    up: u64,
    down: u64,
    usage: Option<crate::results::ProcessUsage>,
}

/// Every node of the run; one for a single target.
pub struct Nodes {
    list: Vec<Node>,
}

impl Nodes {
    /// A single target: its wires are the run's own (nothing counted twice, nothing reported).
    pub fn single(target: Arc<TargetAddr>, counters: &Counters) -> Nodes {
        Nodes {
            list: vec![Node::new(
                String::new(),
                target,
                None,
                counters.receiver_wire.clone(),
                counters.sender_wire.clone(),
            )],
        }
    }

    /// Several nodes, each connection opened from `source` (`--source-ip`) when given.
    pub fn several(
        nodes: &[NodeTarget],
        source: Option<std::net::IpAddr>,
        counters: &Counters,
    ) -> Nodes {
        let child = |parent: &Arc<WireCounters>| {
            Arc::new(WireCounters {
                parent: Some(parent.clone()),
                ..WireCounters::default()
            })
        };
        let list = nodes
            .iter()
            .map(|n| {
                Node::new(
                    n.url.clone(),
                    Arc::new(n.target.clone().with_source(source)),
                    n.pid,
                    child(&counters.receiver_wire),
                    child(&counters.sender_wire),
                )
            })
            .collect();
        Nodes { list }
    }

    pub fn is_several(&self) -> bool {
        self.list.len() > 1
    }

    /// Receiver `i`'s or sender `j`'s node.
    pub fn for_index(&self, index: usize) -> &Node {
        &self.list[index % self.list.len()]
    }

    /// Counts the senders placed on each node.
    pub fn place_senders(&self, senders: impl Iterator<Item = u32>) {
        for j in senders {
            self.for_index(j as usize).senders.fetch_add(1, Relaxed);
        }
    }

    /// Every node's counters now (empty for a single target).
    pub fn sample(&self) -> Vec<NodeSample> {
        if !self.is_several() {
            return Vec::new();
        }
        self.list
            .iter()
            .map(|n| NodeSample {
                requests: n.requests.load(Relaxed),
                up: n.receiver_wire.up.load(Relaxed) + n.sender_wire.up.load(Relaxed),
                down: n.receiver_wire.down.load(Relaxed) + n.sender_wire.down.load(Relaxed),
                cpu: n.pid.and_then(|pid| resources::sample(Some(pid))),
            })
            .collect()
    }

    /// The servers' CPU and memory summed over the nodes, when every node's could be read.
    pub fn summed_cpu(samples: &[NodeSample]) -> Option<ProcSample> {
        samples.iter().try_fold(ProcSample::default(), |sum, s| {
            let c = s.cpu?;
            Some(ProcSample {
                cpu_seconds: sum.cpu_seconds + c.cpu_seconds,
                rss_bytes: sum.rss_bytes + c.rss_bytes,
                peak_rss_bytes: sum.peak_rss_bytes + c.peak_rss_bytes,
            })
        })
    }

    /// Keeps each node's requests, bytes and CPU between the window's edges.
    pub fn set_window(&self, from: &[NodeSample], to: &[NodeSample], window: Duration) {
        for ((n, a), b) in self.list.iter().zip(from).zip(to) {
            let usage = match (a.cpu, b.cpu) {
                (Some(a), Some(b)) => Some(resources::usage_between(a, b, window)),
                _ => None,
            };
            *lock(&n.window) = Some(NodeWindow {
                requests: b.requests.saturating_sub(a.requests),
                up: b.up.saturating_sub(a.up),
                down: b.down.saturating_sub(a.down),
                usage,
            });
        }
    }

    /// Per-node figures for `results.json` (`None` for a single target). Call after the
    /// recorder closed.
    pub fn results(&self, recorder: &crate::recorder::Recorder) -> Option<Vec<NodeResult>> {
        if !self.is_several() {
            return None;
        }
        let owed = recorder.owed_by_member();
        Some(
            self.list
                .iter()
                .map(|n| {
                    let expected: u64 = lock(&n.spans)
                        .iter()
                        .map(|&i| owed.get(i).copied().unwrap_or(0))
                        .sum();
                    let delivered = n.delivered.load(Relaxed);
                    let h = lock(&n.latency);
                    let ms = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e3);
                    let w = lock(&n.window).clone();
                    let usage = w.as_ref().and_then(|w| w.usage.clone());
                    NodeResult {
                        url: n.url.clone(),
                        receivers: n.receivers.load(Relaxed),
                        connected: n.connected.load(Relaxed),
                        senders: n.senders.load(Relaxed),
                        expected,
                        delivered,
                        missing: expected.saturating_sub(delivered),
                        latency_p50_ms: ms(0.5),
                        latency_p99_ms: ms(0.99),
                        requests: w.as_ref().map_or(0, |w| w.requests),
                        bytes_up: w.as_ref().map_or(0, |w| w.up),
                        bytes_down: w.as_ref().map_or(0, |w| w.down),
                        server_cpu_percent: usage.as_ref().map(|u| u.cpu_percent),
                        server_cpu_seconds: usage.as_ref().map(|u| u.cpu_seconds),
                        server_peak_rss_bytes: usage.as_ref().map(|u| u.peak_rss_bytes),
                    }
                })
                .collect(),
        )
    }
}

impl Node {
    fn new(
        url: String,
        target: Arc<TargetAddr>,
        pid: Option<u32>,
        receiver_wire: Arc<WireCounters>,
        sender_wire: Arc<WireCounters>,
    ) -> Node {
        Node {
            url,
            target,
            pid,
            receiver_wire,
            sender_wire,
            receivers: AtomicU64::new(0),
            senders: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            latency: Mutex::new(new_latency_histogram()),
            spans: Mutex::new(Vec::new()),
            window: Mutex::new(None),
        }
    }

    /// A receiver was placed on this node.
    pub fn placed(&self) {
        self.receivers.fetch_add(1, Relaxed);
    }

    /// One of its receivers connected for the first time, as the recorder's member `span`.
    pub fn joined(&self, span: Option<usize>) {
        self.connected.fetch_add(1, Relaxed);
        if let Some(span) = span {
            lock(&self.spans).push(span);
        }
    }

    pub fn request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// An owed first delivery of a measured probe, `latency_us` after its intended send.
    pub fn delivered(&self, latency_us: u64) {
        self.delivered.fetch_add(1, Relaxed);
        lock(&self.latency).saturating_record(latency_us);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_and_refuses_duplicates_and_empty_entries() {
        let list = parse_list("http://127.0.0.1:1,http://127.0.0.1:2").expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].1.port, 2);
        let err = parse_list("http://127.0.0.1:1,http://127.0.0.1:1/").expect_err("duplicate");
        assert!(err.to_string().contains("http://127.0.0.1:1/"), "{err}");
        assert!(err.to_string().contains("twice"), "{err}");
        let err = parse_list("http://127.0.0.1:1,").expect_err("empty");
        assert!(err.to_string().contains("empty"), "{err}");
        let err = parse_list("http://127.0.0.1:1,nonsense").expect_err("bad");
        assert!(err.to_string().contains("`nonsense`"), "{err}");
    }

    #[test]
    fn places_round_robin() {
        let counters = Counters::default();
        let targets: Vec<NodeTarget> = (1..=3)
            .map(|port| NodeTarget {
                url: format!("http://127.0.0.1:{port}"),
                target: TargetAddr::new(([127, 0, 0, 1], port).into(), "x").expect("addr"),
                pid: None,
            })
            .collect();
        let nodes = Nodes::several(&targets, None, &counters);
        assert_eq!(nodes.for_index(4).url, "http://127.0.0.1:2");
        nodes.place_senders(0..5);
        assert_eq!(nodes.list[0].senders.load(Relaxed), 2);
        assert_eq!(nodes.list[2].senders.load(Relaxed), 1);
    }
}
