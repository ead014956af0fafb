//! Each node's share of a run with several `--target` nodes (`nodes` in `results.json`) and its
//! table in `summary.md`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::results::RunResult;

/// One node's share of a run (`nodes` in `results.json`, with several `--target` URLs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeResult {
    pub url: String,
    /// Receivers placed on it (receiver `i` → node `i mod K`), and those that connected.
    pub receivers: u64,
    pub connected: u64,
    /// Senders placed on it (sender `j` → node `j mod K`).
    pub senders: u64,
    /// Measured probes owed to its receivers, delivered through it, and missing.
    pub expected: u64,
    pub delivered: u64,
    pub missing: u64,
    /// Corrected latency of the deliveries received through it (missing pairs not included).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Its receivers' requests in the measured window.
    pub requests: u64,
    /// Bytes of every connection to it (receivers and senders) in the measured window.
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Its process's CPU in the measured window (100 = one core) and peak memory, when it
    /// runs on this machine and /proc can be read.
    pub server_cpu_percent: Option<f64>,
    pub server_cpu_seconds: Option<f64>,
    pub server_peak_rss_bytes: Option<u64>,
}

/// The per-node tables of `summary.md` (empty when no run had several nodes).
pub fn markdown(runs: &[RunResult]) -> String {
    let mut md = String::new();
    for run in runs {
        let Some(nodes) = run.nodes.as_ref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let _ = writeln!(md, "## Nodes: {}\n", run.label);
        md.push_str(
            "| node | receivers | senders | delivered | missing | p50 ms | p99 ms | requests | bytes up | bytes down | server CPU % | server CPU-ms / 1,000 deliveries |\n",
        );
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
        };
        let row = |md: &mut String, name: &str, n: &NodeResult| {
            let per_1000 = n
                .server_cpu_seconds
                .filter(|_| n.delivered > 0)
                .map(|s| s * 1e6 / n.delivered as f64);
            let _ = writeln!(
                md,
                "| {name} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                n.connected,
                n.receivers,
                n.senders,
                n.delivered,
                n.missing,
                opt(n.latency_p50_ms, 1),
                opt(n.latency_p99_ms, 1),
                n.requests,
                n.bytes_up,
                n.bytes_down,
                opt(n.server_cpu_percent, 1),
                opt(per_1000, 2),
            );
        };
        for n in nodes {
            row(&mut md, &n.url.replace('|', "\\|"), n);
        }
        let sum = |f: fn(&NodeResult) -> u64| nodes.iter().map(f).sum::<u64>();
        let cpu = nodes
            .iter()
            .map(|n| n.server_cpu_seconds)
            .sum::<Option<f64>>();
        let total = NodeResult {
            url: String::new(),
            receivers: sum(|n| n.receivers),
            connected: sum(|n| n.connected),
            senders: sum(|n| n.senders),
            expected: sum(|n| n.expected),
            delivered: sum(|n| n.delivered),
            missing: sum(|n| n.missing),
            latency_p50_ms: Some(run.latency.corrected.p50_us as f64 / 1e3),
            latency_p99_ms: Some(run.latency.corrected.p99_us as f64 / 1e3),
            requests: sum(|n| n.requests),
            bytes_up: sum(|n| n.bytes_up),
            bytes_down: sum(|n| n.bytes_down),
            server_cpu_percent: nodes.iter().map(|n| n.server_cpu_percent).sum(),
            server_cpu_seconds: cpu,
            server_peak_rss_bytes: None,
        };
        row(&mut md, "**total**", &total);
        md.push_str(
            "\nLatency per node: owed deliveries received through it; the total's includes missing pairs censored at the run's end.\n\n",
        );
    }
    md
}
