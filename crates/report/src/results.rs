//! The result schema: what one run measured, and what `results.json` holds.
//!
//! This is the single source for every export format (JSON, Markdown, CSV, `.hgrm`, HTML).
//! Field names are stable and documented in the README; units are in the names
//! (`_us` microseconds, `_ms` milliseconds, `_bytes`, `_seconds`). Derived views (ratios to push,
//! the polling model) are computed when rendering, never stored here.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

pub use crate::nodes::NodeResult;
use crate::scenario::{Scenario, StrategySpec};

/// Bump when a field changes meaning or disappears (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

/// Highest latency a histogram tracks: 10 minutes in microseconds. Longer values saturate.
pub const HISTOGRAM_MAX_US: u64 = 600_000_000;
/// Significant decimal digits kept by every latency histogram.
pub const HISTOGRAM_SIGFIGS: u8 = 3;

/// A new empty latency histogram in microseconds (1 µs .. 10 min, 3 significant digits).
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, HISTOGRAM_SIGFIGS)
        .expect("constant histogram bounds are valid")
}

/// The content of `results.json`: one scenario, the machine, and every run made under it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub tool: ToolInfo,
    pub machine: Machine,
    pub scenario: Scenario,
    /// Seconds since the Unix epoch when the run or sweep started (a label, not used in maths).
    pub started_unix: u64,
    pub runs: Vec<RunResult>,
}

/// Why `results.json` could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a pushpoll results file: {source}")]
    Parse {
        path: std::path::PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} has schema version {found}; this loadgen reads version {SCHEMA_VERSION}")]
    Version {
        path: std::path::PathBuf,
        found: u32,
    },
}

impl Results {
    /// Reads `results.json` from a folder or a file path.
    pub fn load(path: &std::path::Path) -> Result<Results, ResultsFileError> {
        let path = if path.is_dir() {
            path.join("results.json")
        } else {
            path.to_path_buf()
        };
        let bytes = std::fs::read(&path).map_err(|e| ResultsFileError::Read {
            path: path.clone(),
            source: e,
        })?;
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let version: Version =
            serde_json::from_slice(&bytes).map_err(|e| ResultsFileError::Parse {
                path: path.clone(),
                source: e,
            })?;
        if version.schema_version != SCHEMA_VERSION {
            return Err(ResultsFileError::Version {
                path,
                found: version.schema_version,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ResultsFileError::Parse { path, source: e })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub git_commit: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: Option<u64>,
    pub os: String,
    pub kernel: Option<String>,
    pub cpu_model: Option<String>,
}

/// Everything one strategy run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// `poll@1s`, `socketio`, … (the strategy spec's label; unique within a sweep).
    pub label: String,
    pub strategy: StrategySpec,
    /// Where the server under test was: `spawned` (child process) or the target URL.
    pub target: String,
    pub outcome: Outcome,
    pub timings: Timings,
    pub clients: ClientCounts,
    pub latency: LatencyResult,
    pub delivery: Delivery,
    pub traffic: Traffic,
    pub schedule: ScheduleStats,
    pub resources: Resources,
    /// The generator's own error: send lag, event-loop lag, its busiest threads.
    #[serde(default)]
    pub generator_error: GeneratorError,
    /// Poll and long-poll strategies: the server's share of each poll, and stale answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls: Option<PollStats>,
    /// When the target stopped answering its health checks (restarts, stalls) and what the
    /// receivers saw of it.
    #[serde(default)]
    pub outages: Outages,
    /// With several `--target` nodes: each node's share (see [`crate::nodes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<crate::nodes::NodeResult>>,
    /// True when any warning says the generator, not the server, may have limited the numbers.
    pub saturated: bool,
    pub warnings: Vec<Warning>,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// Ctrl-C: the numbers cover what was measured until then.
    Interrupted,
    /// The server under test stopped answering or exited mid-run.
    ServerDied {
        detail: String,
    },
    Failed {
        detail: String,
    },
}

/// One line for a person: `completed`, `failed: …`, ….
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Completed => f.write_str("completed"),
            Outcome::Interrupted => f.write_str("interrupted (Ctrl-C): partial results"),
            Outcome::ServerDied { detail } => {
                write!(f, "SERVER DIED, partial results: {detail}")
            }
            Outcome::Failed { detail } => write!(f, "FAILED: {detail}"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub connect_ms: f64,
    pub warmup_ms: f64,
    pub measure_ms: f64,
    pub drain_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClientCounts {
    pub planned: u64,
    pub connected: u64,
    pub failed: u64,
}

/// Delivery latency per (message, receiver), plus the fan-out completion time per message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyResult {
    /// From the *intended* send time (coordinated-omission corrected): the headline number.
    pub corrected: LatencyStats,
    /// From the instant the POST actually started.
    pub uncorrected: LatencyStats,
    /// Per message: from intended send time until the last receiver had it.
    pub fanout: LatencyStats,
    /// HdrHistogram V2 deflate, base64: corrected latencies in µs.
    pub histogram_corrected: EncodedHistogram,
    pub histogram_uncorrected: EncodedHistogram,
    pub histogram_fanout: EncodedHistogram,
    /// Independent sends (measured probes) behind `corrected`: pairs of one probe share its
    /// send and its fan-out, so the probe, not the pair, is the unit of uncertainty.
    #[serde(default)]
    pub probes: u64,
    /// 95 % bootstrap confidence intervals of `corrected` p50 and p99, resampled over probes
    /// (empty when fewer than 2 probes were measured).
    #[serde(default)]
    pub intervals: Vec<crate::bootstrap::Interval>,
}

impl LatencyResult {
    /// The confidence interval of the corrected latency at `quantile`, if computed.
    pub fn interval(&self, quantile: f64) -> Option<&crate::bootstrap::Interval> {
        self.intervals
            .iter()
            .find(|i| (i.quantile - quantile).abs() < 1e-9)
    }
}

/// Summary of one latency histogram, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    pub stdev_us: f64,
    /// Samples that are not measurements but lower bounds: (probe, receiver) pairs still
    /// missing when the run closed, recorded at the close instant.
    #[serde(default)]
    pub censored: u64,
    /// The smallest censored value: every percentile at or above it is a lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound_from_us: Option<u64>,
}

impl LatencyStats {
    /// True when a percentile of value `us` is only a lower bound (it falls among censored
    /// samples). HdrHistogram reports a bucket's highest equivalent value, hence the slack.
    pub fn is_lower_bound(&self, us: u64) -> bool {
        self.lower_bound_from_us
            .is_some_and(|from| us.saturating_add(us / 500) >= from)
    }

    /// Statistics of a histogram that holds `censored` lower-bound samples from `from_us` up.
    pub fn with_censored(h: &Histogram<u64>, censored: u64, from_us: Option<u64>) -> Self {
        LatencyStats {
            censored,
            lower_bound_from_us: from_us.filter(|_| censored > 0),
            ..LatencyStats::from_histogram(h)
        }
    }

    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencyStats::default();
        }
        LatencyStats {
            censored: 0,
            lower_bound_from_us: None,
            count: h.len(),
            min_us: h.min(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
            stdev_us: h.stdev(),
        }
    }
}

/// A histogram serialized with HdrHistogram's V2 deflate format, base64 encoded, so reports can
/// be re-rendered (percentile plots, `.hgrm`) from `results.json` alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncodedHistogram(pub String);

/// Why a stored histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramCodecError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram is not a valid HdrHistogram V2 encoding: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
    #[error("histogram could not be encoded: {0:?}")]
    Encode(hdrhistogram::serialization::V2DeflateSerializeError),
}

impl EncodedHistogram {
    pub fn encode(h: &Histogram<u64>) -> Result<Self, HistogramCodecError> {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h, &mut buf)
            .map_err(HistogramCodecError::Encode)?;
        Ok(EncodedHistogram(
            base64::engine::general_purpose::STANDARD.encode(buf),
        ))
    }

    pub fn decode(&self) -> Result<Histogram<u64>, HistogramCodecError> {
        if self.0.is_empty() {
            return Ok(new_latency_histogram());
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.0)?;
        Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(HistogramCodecError::Decode)
    }
}

/// Did every receiver get every measured message exactly once, in order?
///
/// A probe is owed to the receivers that were members of the run (connected at least once and
/// not given up) when its POST left. A failed or unanswered POST is a lost message: its owed
/// pairs are in `expected` and `missing`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// Probes whose intended send time fell in the measured window and whose POST succeeded.
    pub probes_sent: u64,
    /// Measured probes whose POST failed: connect error, non-2xx, timeout, or it could not
    /// leave because its sender had too many POSTs in flight.
    pub probes_failed: u64,
    /// Measured probes whose POST was still unanswered when the run closed.
    #[serde(default)]
    pub probes_unanswered: u64,
    /// Σ over measured probes (accepted, failed and unanswered) of the receivers owed each.
    pub expected: u64,
    /// First deliveries of expected (probe, receiver) pairs.
    pub delivered: u64,
    /// expected − delivered, when the run closed.
    pub missing: u64,
    /// The part of `missing` owed by failed or unanswered POSTs.
    #[serde(default)]
    pub missing_from_failed_sends: u64,
    /// A receiver saw the same measured probe again.
    pub duplicates: u64,
    /// A receiver saw a measured probe after a later probe of the same sender.
    pub out_of_order: u64,
    /// First deliveries (included in `delivered`) that arrived only through the catch-up
    /// request a receiver makes after reconnecting (`GET /messages?since=`).
    #[serde(default)]
    pub delivered_by_catchup: u64,
    /// Deliveries of measured probes to receivers that joined after the probe was sent
    /// (history served to a late joiner): not owed, not in `delivered`.
    #[serde(default)]
    pub extra_deliveries: u64,
}

impl Delivery {
    /// Every owed pair arrived exactly once, in order, and every POST was accepted.
    pub fn exactly_once(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.probes_failed == 0
            && self.probes_unanswered == 0
            && self.probes_sent > 0
    }
}

/// Requests and bytes on the wire, as counted at the generator's connections.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Traffic {
    pub requests: Requests,
    /// Client → server bytes: headers, bodies, frames, handshakes (receivers and senders).
    pub bytes_up: u64,
    /// Server → client bytes.
    pub bytes_down: u64,
    /// Receivers' bytes only (up + down), the cost of the strategy itself.
    pub receiver_bytes: u64,
    pub connections_opened: u64,
    /// First deliveries over the whole run (warm-up, window and drain): with `receiver_bytes`,
    /// the all-in cost per message, handshakes and heartbeats included.
    #[serde(default)]
    pub deliveries: u64,
    /// Counts over the measured window only (these feed the per-second and per-message views).
    pub measured: TrafficWindow,
    /// What the bytes above are: `plain` (HTTP and WebSocket bytes as sent) or `tls` (TLS
    /// records, handshakes included: counted below the encryption, as a capture sees them).
    #[serde(default)]
    pub wire: Wire,
}

/// What the counted bytes are (see [`Traffic::wire`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    #[default]
    Plain,
    Tls,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Requests {
    /// HTTP requests made by receivers (polls, long polls, SSE and engine.io requests).
    pub receiver_requests: u64,
    /// Poll or long-poll answers that carried no new message.
    pub empty_polls: u64,
    /// `304 Not Modified` answers.
    pub not_modified: u64,
    /// Probe POSTs.
    pub posts: u64,
    /// Errors by kind (`connect`, `timeout`, `http_status`, `protocol`, `closed`, …).
    pub errors: BTreeMap<String, u64>,
    /// The generator's own requests to the target (capability check, health checks, /metrics
    /// scrapes), on connections of their own: not part of any strategy's cost, and not in
    /// `bytes_up`/`bytes_down`. Listed so the totals can be reconciled with the server's counters.
    #[serde(default)]
    pub control_bytes_up: u64,
    #[serde(default)]
    pub control_bytes_down: u64,
}

/// Traffic inside the measured window, for rates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrafficWindow {
    pub seconds: f64,
    pub receiver_requests: u64,
    pub empty_polls: u64,
    pub receiver_bytes_up: u64,
    pub receiver_bytes_down: u64,
    pub deliveries: u64,
}

impl Traffic {
    /// Receiver bytes of the whole run (connects, handshakes, heartbeats, warm-up and drain
    /// included) per first delivery: what a message really costs, setup spread over the run.
    pub fn all_in_bytes_per_delivery(&self) -> f64 {
        ratio(self.receiver_bytes as f64, self.deliveries as f64)
    }
}

impl TrafficWindow {
    pub fn requests_per_second(&self) -> f64 {
        ratio(self.receiver_requests as f64, self.seconds)
    }
    pub fn bytes_per_second(&self) -> f64 {
        ratio(
            (self.receiver_bytes_up + self.receiver_bytes_down) as f64,
            self.seconds,
        )
    }
    pub fn requests_per_delivery(&self) -> f64 {
        ratio(self.receiver_requests as f64, self.deliveries as f64)
    }
    pub fn bytes_per_delivery(&self) -> f64 {
        ratio(
            (self.receiver_bytes_up + self.receiver_bytes_down) as f64,
            self.deliveries as f64,
        )
    }
    pub fn empty_poll_ratio(&self) -> f64 {
        ratio(self.empty_polls as f64, self.receiver_requests as f64)
    }
}

/// `a / b`, or NaN-free 0 when there is nothing to divide by.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Did the generator keep to its plan? (open-loop sends, fixed-schedule polls)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScheduleStats {
    pub planned_sends: u64,
    /// Measured sends the server accepted (2xx).
    pub achieved_sends: u64,
    /// Measured sends that failed, were left unanswered, or could not leave (lost messages).
    #[serde(default)]
    pub failed_sends: u64,
    /// Measured sends that left more than 2 ms (`schedule::LATE_AFTER`) after their intended time.
    pub late_sends: u64,
    pub planned_polls: u64,
    pub achieved_polls: u64,
    /// Poll ticks skipped because the previous poll was still in flight.
    pub skipped_polls: u64,
    /// Poll ticks that started more than 2 ms (`schedule::LATE_AFTER`) after their scheduled instant.
    #[serde(default)]
    pub late_polls: u64,
}

impl ScheduleStats {
    /// Share of planned sends that left (accepted or failed by the server, but not those that
    /// could not leave): below 1 in a completed run means the generator fell behind.
    pub fn send_ratio(&self) -> f64 {
        if self.planned_sends == 0 {
            1.0
        } else {
            (self.achieved_sends + self.failed_sends) as f64 / self.planned_sends as f64
        }
    }
    pub fn poll_ratio(&self) -> f64 {
        if self.planned_polls == 0 {
            1.0
        } else {
            self.achieved_polls as f64 / self.planned_polls as f64
        }
    }
}

/// The generator's own error, measured over the window, beside the latency it bounds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorError {
    /// Actual − intended send instant of every measured probe, µs.
    pub send_lag: LatencyStats,
    /// Overshoot of a timer task on the runtime's worker threads (all of them together), µs:
    /// how long a ready receiver may wait for a worker. tokio's timer wakes on a 1 ms grid,
    /// so up to ~1 ms of it is the timer's granularity.
    pub loop_lag: LatencyStats,
    /// Poll strategies: how late each poll tick started (started − due), µs. tokio's timer
    /// wakes on a 1 ms grid, so up to ~1 ms of it is the timer's granularity.
    #[serde(default)]
    pub poll_lag: LatencyStats,
    /// The loop-lag task's period, ms.
    pub loop_lag_period_ms: f64,
    /// Loop lag per worker thread (by the thread that ran the timer task).
    pub loop_lag_threads: Vec<ThreadLag>,
    /// The generator's threads over the window, busiest first (100 = one core).
    pub threads: Vec<ThreadCpuUsage>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ThreadLag {
    pub thread: String,
    pub lag: LatencyStats,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ThreadCpuUsage {
    pub thread: String,
    pub cpu_percent: f64,
}

/// The target's outages during a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outages {
    /// Windows in which the target did not answer its health checks (every 500 ms), ms since the
    /// run's start. Longer than 2 s ends the run as `server_died`.
    pub windows: Vec<OutageWindow>,
    /// Times a receiver found its cursor ahead of the server's log (an in-memory server that
    /// restarted, its ids starting again) and read the new log from its start.
    pub log_restarts_seen: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutageWindow {
    pub from_ms: f64,
    pub to_ms: f64,
}

/// What the polls themselves show about the server (poll and long-poll strategies).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PollStats {
    /// Request sent to answer read, µs, for polls sent in the window (`poll` only: a long
    /// poll's answer time is its wait). The server's share of a poll's latency.
    pub answer_time: LatencyStats,
    /// Answers (and 304s) that left out a probe whose POST had been answered before the poll
    /// was sent: zero for a correct server.
    pub stale_answers: u64,
}

/// CPU and memory, of the generator and of the server, measured separately.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resources {
    pub generator: ProcessUsage,
    pub server: Option<ProcessUsage>,
    /// How the server's usage was read: `proc` (child process), `metrics` (its /metrics), `unavailable`.
    pub server_source: String,
    /// The server's memory per connection, when its process can be read from /proc (a spawned
    /// child or a local `--target`); absent otherwise, never zero for unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_memory: Option<ServerMemory>,
}

/// The server's resident memory before and with the run's receivers connected, and what each
/// connection added: `(rss − baseline) / connections`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMemory {
    /// Resident memory (`Rss` of /proc/PID/smaps_rollup) after the server was up (and answered
    /// the generator's checks), before the first receiver connected.
    pub baseline_rss_bytes: u64,
    /// Resident memory once every receiver had connected, before the first send (idle
    /// connections).
    pub idle_rss_bytes: u64,
    /// The highest resident memory sampled while the receivers were connected: once connected,
    /// after the last send, at the end of the drain.
    pub peak_rss_bytes: u64,
    /// Receiver connections open when the server was sampled (the receivers connected).
    pub connections: u64,
    /// `(peak_rss_bytes − baseline_rss_bytes) / connections`, bytes (0 when the RSS fell).
    pub per_connection_bytes: f64,
    /// `(idle_rss_bytes − baseline_rss_bytes) / connections`: an idle connection's cost.
    pub idle_per_connection_bytes: f64,
}

impl ServerMemory {
    /// From the server's VmRSS before the receivers connected, once they had, and the highest
    /// reading while they were connected. `None` without connections.
    pub fn new(baseline: u64, idle: u64, peak: u64, connections: u64) -> Option<ServerMemory> {
        let per = |rss: u64| rss.saturating_sub(baseline) as f64 / connections as f64;
        (connections > 0).then(|| ServerMemory {
            baseline_rss_bytes: baseline,
            idle_rss_bytes: idle,
            peak_rss_bytes: peak.max(idle),
            connections,
            per_connection_bytes: per(peak.max(idle)),
            idle_per_connection_bytes: per(idle),
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// User + system CPU seconds spent during the measured window.
    pub cpu_seconds: f64,
    /// cpu_seconds / measured seconds × 100 (100 = one core busy).
    pub cpu_percent: f64,
    /// Peak resident memory over the run.
    pub peak_rss_bytes: u64,
}

/// Something the reader must know before trusting a number; each says what to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    GeneratorSaturated {
        cpu_percent: f64,
        cores: usize,
    },
    SendRateBelowPlan {
        achieved_ratio: f64,
    },
    PollRateBelowPlan {
        achieved_ratio: f64,
    },
    TooFewSamples {
        count: u64,
    },
    ClientsFailed {
        failed: u64,
        planned: u64,
    },
    MessagesLost {
        missing: u64,
        expected: u64,
    },
    /// Measured sends that failed (non-2xx, timeout, connect error), stayed unanswered, or
    /// could not leave: each is a lost message.
    FailedSends {
        failed: u64,
        planned: u64,
    },
    /// Measured sends that left late (more than 2 ms after their intended instant).
    LateSends {
        late: u64,
        planned: u64,
    },
    /// Poll ticks that started late (more than 2 ms after their scheduled instant), with a
    /// tick lag p99 over a tenth of the run's own p50: lateness that shows in what it measures.
    LatePolls {
        late: u64,
        ticks: u64,
        #[serde(default)]
        p99_us: u64,
    },
    /// The generator's own delay (`send lag` or `loop lag`) has a p99 above a tenth of the
    /// fastest latency it measures (`bound_us`, that p50).
    GeneratorLag {
        source: String,
        p99_us: u64,
        bound_us: u64,
    },
    /// One generator thread was busy most of the window: averages over all cores hide it.
    ThreadSaturated {
        thread: String,
        cpu_percent: f64,
    },
    /// Poll answers that left out a message accepted before the poll was sent.
    StaleAnswers {
        count: u64,
    },
    /// The target stopped answering for a while (a restart, a stall) and came back.
    TargetOutage {
        count: u64,
        longest_ms: f64,
        log_restarts_seen: u64,
    },
    ServerUsageUnavailable,
    FellBackToFullList,
    /// Processes other than the generator and the server used this much CPU (100 = one core)
    /// during the measured window: both competed with them.
    OtherCpuLoad {
        cpu_percent: f64,
    },
    /// The generator and a server on the same machine together kept the CPU this busy
    /// (100 = one core): latencies include waiting for a core, on both sides.
    MachineSaturated {
        generator_percent: f64,
        server_percent: f64,
        cores: usize,
    },
    /// A merged run (`loadgen merge`) without some of its shards: its figures cover only the
    /// shards listed, and probes of the missing shards' senders are not in them.
    ShardsMissing {
        missing: Vec<u32>,
        count: u32,
    },
}

impl Warning {
    /// Warnings that mean the generator may have been the bottleneck.
    pub fn is_saturation(&self) -> bool {
        matches!(
            self,
            Warning::GeneratorSaturated { .. }
                | Warning::SendRateBelowPlan { .. }
                | Warning::PollRateBelowPlan { .. }
                | Warning::OtherCpuLoad { .. }
                | Warning::MachineSaturated { .. }
                | Warning::LateSends { .. }
                | Warning::LatePolls { .. }
                | Warning::GeneratorLag { .. }
                | Warning::ThreadSaturated { .. }
        )
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::GeneratorSaturated { cpu_percent, cores } => write!(
                f,
                "generator used {cpu_percent:.0}% CPU of {cores} cores: latencies include its own queueing; run fewer clients or move the server to another machine"
            ),
            Warning::SendRateBelowPlan { achieved_ratio } => write!(
                f,
                "senders achieved {:.1}% of the planned rate: lower --rate or add --senders",
                achieved_ratio * 100.0
            ),
            Warning::PollRateBelowPlan { achieved_ratio } => write!(
                f,
                "receivers achieved {:.1}% of the planned poll rate: the generator or server could not keep up; use fewer clients or a longer interval",
                achieved_ratio * 100.0
            ),
            Warning::TooFewSamples { count } => write!(
                f,
                "only {count} measured probes (independent sends) stand behind the percentiles: the tail is not meaningful; raise --duration or --rate"
            ),
            Warning::ClientsFailed { failed, planned } => write!(
                f,
                "{failed} of {planned} clients failed to connect: check the open-file limit and the server's log, or lower --connect-rate"
            ),
            Warning::MessagesLost { missing, expected } => write!(
                f,
                "{missing} of {expected} expected deliveries never arrived: see errors; raise --drain if stragglers were still on their way"
            ),
            Warning::FailedSends { failed, planned } => write!(
                f,
                "{failed} of {planned} measured sends failed or were never answered: each is a lost message, counted in missing; see errors"
            ),
            Warning::LateSends { late, planned } => write!(
                f,
                "{late} of {planned} measured sends left more than 2 ms late: the generator could not keep its schedule; lower --rate or the client count"
            ),
            Warning::LatePolls {
                late,
                ticks,
                p99_us,
            } => write!(
                f,
                "{late} of {ticks} poll ticks started more than 2 ms late (tick lag p99 {:.2} ms, over a tenth of this run's p50): the generator could not keep the poll schedule; use fewer clients",
                *p99_us as f64 / 1000.0
            ),
            Warning::GeneratorLag {
                source,
                p99_us,
                bound_us,
            } => write!(
                f,
                "the generator's {source} reached {:.2} ms at p99, over a tenth of the fastest p50 it measures ({:.2} ms): its own delay is a visible share of the latency; use fewer clients or a quieter machine",
                *p99_us as f64 / 1000.0,
                *bound_us as f64 / 1000.0
            ),
            Warning::ThreadSaturated {
                thread,
                cpu_percent,
            } => write!(
                f,
                "generator thread {thread} was {cpu_percent:.0}% busy: it was a bottleneck even if the average CPU looks low; use fewer clients"
            ),
            Warning::StaleAnswers { count } => write!(
                f,
                "{count} poll answers left out a message the server had already accepted when the poll was sent: the server serves stale data"
            ),
            Warning::TargetOutage {
                count,
                longest_ms,
                log_restarts_seen,
            } => write!(
                f,
                "the target stopped answering {count} time(s), for up to {longest_ms:.0} ms{}: sends in the outage failed and receivers reconnected; see outages",
                if *log_restarts_seen > 0 {
                    format!(
                        ", and its log started again ({log_restarts_seen} receivers read it anew)"
                    )
                } else {
                    String::new()
                }
            ),
            Warning::ServerUsageUnavailable => write!(
                f,
                "server CPU and memory unknown: the target exposes no /metrics with process_cpu_seconds_total; run without --target to measure the project's server"
            ),
            Warning::FellBackToFullList => write!(
                f,
                "target has no cursor support (no `id`, no `since`): poll fetched the whole list and deduplicated by probe"
            ),
            Warning::MachineSaturated {
                generator_percent,
                server_percent,
                cores,
            } => write!(
                f,
                "generator ({generator_percent:.0}%) and server ({server_percent:.0}%) together kept {cores} cores over 80% busy: latencies include waiting for a CPU; use fewer clients, or put the server on another machine (--target)"
            ),
            Warning::OtherCpuLoad { cpu_percent } => write!(
                f,
                "other processes used {cpu_percent:.0}% of a core while this run was measured: the generator and the server competed with them for the CPU; rerun on a quiet machine"
            ),
            Warning::ShardsMissing { missing, count } => write!(
                f,
                "shards {missing:?} of {count} are missing or failed: this merge is NOT the whole run (their senders' probes and their receivers are not counted); rerun them, or merge their folders too"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_through_base64() {
        let mut h = new_latency_histogram();
        for v in [1u64, 10, 100, 1_000, 10_000, 123_456, 5_000_000] {
            h.record(v).expect("in range");
        }
        let enc = EncodedHistogram::encode(&h).expect("encode");
        let back = enc.decode().expect("decode");
        assert_eq!(back.len(), h.len());
        assert_eq!(
            LatencyStats::from_histogram(&back),
            LatencyStats::from_histogram(&h)
        );
        assert!(EncodedHistogram("not base64!".into()).decode().is_err());
        assert!(EncodedHistogram("AAAA".into()).decode().is_err());
        assert!(
            EncodedHistogram::default()
                .decode()
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn outcomes_read_as_one_line_with_their_detail() {
        assert_eq!(Outcome::Completed.to_string(), "completed");
        let died = Outcome::ServerDied {
            detail: "exited".into(),
        };
        assert_eq!(died.to_string(), "SERVER DIED, partial results: exited");
    }

    #[test]
    fn stats_of_an_empty_histogram_are_zero() {
        assert_eq!(
            LatencyStats::from_histogram(&new_latency_histogram()),
            LatencyStats::default()
        );
    }

    #[test]
    fn warnings_serialize_with_their_kind_and_say_what_to_do() {
        let w = Warning::PollRateBelowPlan {
            achieved_ratio: 0.9,
        };
        let json = serde_json::to_string(&w).expect("json");
        assert!(json.contains("\"kind\":\"poll_rate_below_plan\""), "{json}");
        assert!(w.to_string().contains("90.0%"));
        assert!(w.is_saturation());
        assert!(!Warning::ServerUsageUnavailable.is_saturation());
    }
}
