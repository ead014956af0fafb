//! Each node's share of a run with several `--target` nodes (`nodes` in `results.json`).

use serde::{Deserialize, Serialize};

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
