//! `loadgen merge DIR… --out DIR`: the shards of one run, merged into one exact result.
//!
//! - Latency histograms add exactly (HdrHistogram `add`, same bounds everywhere); requests,
//!   bytes, errors and schedule counts are sums.
//! - Loss is decided here, not in the shards: a measured probe (from the union of every
//!   shard's sent probes) is owed, in each shard, to the receivers whose membership span holds
//!   its send instant; what a shard's receivers did not get is missing, and enters the tail
//!   censored at that shard's close, as in a single run.
//! - A shard that is missing, unreadable or did not complete is a loud warning in the merged
//!   result (`shards_missing`, a failed outcome) and a non-zero exit: never a silently smaller
//!   run. A folder of another run, another shard count or another scenario is an error.
//!
//! Not merged: the bootstrap's percentile intervals (they need every shard's per-probe
//! samples); the merged result has none.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::clock;
use super::record::{RecordError, ShardRecord};
use crate::recorder::{SentProbe, SentStatus};
use crate::results::{
    Delivery, EncodedHistogram, HistogramCodecError, LatencyResult, LatencyStats, Outcome, Results,
    ResultsFileError, RunResult, ThreadCpuUsage, Warning, new_latency_histogram,
};

/// Fewer measured probes than this: tail percentiles mean little (as in a single run).
const FEW_SAMPLES: u64 = 100;
/// Busiest generator threads listed, over all shards.
const THREADS_LISTED: usize = 8;

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The shards' results folders (each with results.json and shard.json).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Folder for the merged report (results.json, summary.md, …).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("none of the {0} folders given holds a readable shard: nothing to merge")]
    NothingToMerge(usize),
    #[error("{path}: a shard of run `{found}`, the first folder is of run `{expected}`")]
    RunMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path}: shard {index}/{count}, the first folder is one of {expected} shards")]
    CountMismatch {
        path: PathBuf,
        index: u32,
        count: u32,
        expected: u32,
    },
    #[error("shard {index} given twice: {first} and {second}")]
    Duplicate {
        index: u32,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path}: another scenario than the first folder's (shards must run the same one)")]
    ScenarioMismatch { path: PathBuf },
    #[error("{path}: holds {runs} runs; a shard's folder holds one")]
    NotOneRun { path: PathBuf, runs: usize },
    #[error(transparent)]
    Histogram(#[from] HistogramCodecError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `results.json` of a merged run says about its shards (key `merged`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedInfo {
    pub run_id: String,
    /// N: how many shards the run had.
    pub count: u32,
    pub shards: Vec<MergedShard>,
    /// Shard indices with no readable folder among those given.
    pub missing: Vec<u32>,
    /// Folders given that hold no readable shard, and why.
    pub unreadable: Vec<Unreadable>,
    pub clock: ClockAgreement,
    /// (probe, shard) pairs where a shard counted more owed deliveries than it had owing
    /// receivers: zero unless the shards' records disagree.
    pub inconsistent_pairs: u64,
    /// How long the merge itself took, ms.
    pub merge_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedShard {
    pub index: u32,
    pub folder: String,
    pub outcome: String,
    pub clients_connected: u64,
    /// Measured probes its senders posted.
    pub probes_sent: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unreadable {
    pub folder: String,
    pub error: String,
}

/// How far the shards' start instants agree.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockAgreement {
    /// Spread of the start instant between shards on one machine (same boot), ns; `None`
    /// when the shards ran on several machines (their offset cannot be measured here).
    pub spread_ns: Option<u64>,
    /// The largest anchoring error of one shard, ns.
    pub max_anchor_uncertainty_ns: u64,
    pub note: String,
}

/// One shard's folder, read.
pub struct ShardInput {
    pub dir: PathBuf,
    pub results: Results,
    pub record: ShardRecord,
}

/// The merge's answer: the merged results and what it says about its shards.
pub struct Merged {
    pub results: Results,
    pub info: MergedInfo,
}

impl Merged {
    /// True when the merge is the whole run: every shard present and completed.
    pub fn is_whole(&self) -> bool {
        self.info.missing.is_empty()
            && self.info.unreadable.is_empty()
            && self
                .results
                .runs
                .iter()
                .all(|r| r.outcome == Outcome::Completed)
    }
}

/// `loadgen merge`: reads the folders, merges, writes the report folder. Returns the merge
/// and where `results.json` is.
pub fn run(args: &MergeArgs) -> Result<(Merged, PathBuf), MergeError> {
    let merged = merge_dirs(&args.dirs)?;
    let saved = write(&merged, &args.out)?;
    Ok((merged, saved))
}

/// Reads and merges shard folders (nothing written).
pub fn merge_dirs(dirs: &[PathBuf]) -> Result<Merged, MergeError> {
    let started = Instant::now();
    let mut inputs = Vec::new();
    let mut unreadable = Vec::new();
    for dir in dirs {
        match read_shard(dir) {
            Ok(input) => inputs.push(input),
            Err(error) => unreadable.push(Unreadable {
                folder: dir.display().to_string(),
                error,
            }),
        }
    }
    if inputs.is_empty() {
        return Err(MergeError::NothingToMerge(dirs.len()));
    }
    let missing = check_shards(&mut inputs)?;
    let mut merged = merge(&inputs, missing, unreadable)?;
    merged.info.merge_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(merged)
}

fn read_shard(dir: &Path) -> Result<ShardInput, String> {
    let record = ShardRecord::load(dir).map_err(|e: RecordError| e.to_string())?;
    let results = Results::load(dir).map_err(|e: ResultsFileError| e.to_string())?;
    Ok(ShardInput {
        dir: dir.to_path_buf(),
        results,
        record,
    })
}

/// Same run, same N, same scenario, no shard twice; sorts by index and returns the indices
/// missing from 0..N.
fn check_shards(inputs: &mut [ShardInput]) -> Result<Vec<u32>, MergeError> {
    inputs.sort_by_key(|i| i.record.index);
    let first = &inputs[0];
    let comparable = |r: &Results| {
        let mut s = r.scenario.clone();
        s.target = None;
        s
    };
    let scenario = comparable(&first.results);
    for w in inputs.windows(2) {
        if w[0].record.index == w[1].record.index {
            return Err(MergeError::Duplicate {
                index: w[0].record.index,
                first: w[0].dir.clone(),
                second: w[1].dir.clone(),
            });
        }
    }
    for i in inputs.iter() {
        let path = i.dir.clone();
        if i.record.run_id != first.record.run_id {
            return Err(MergeError::RunMismatch {
                path,
                found: i.record.run_id.clone(),
                expected: first.record.run_id.clone(),
            });
        }
        if i.record.count != first.record.count {
            return Err(MergeError::CountMismatch {
                path,
                index: i.record.index,
                count: i.record.count,
                expected: first.record.count,
            });
        }
        if comparable(&i.results) != scenario {
            return Err(MergeError::ScenarioMismatch { path });
        }
        if i.results.runs.len() != 1 {
            return Err(MergeError::NotOneRun {
                path,
                runs: i.results.runs.len(),
            });
        }
    }
    Ok((0..first.record.count)
        .filter(|n| !inputs.iter().any(|i| i.record.index == *n))
        .collect())
}

/// One shard's receivers as the merge needs them.
struct Members {
    /// Join instants, sorted.
    joined: Vec<u64>,
    /// Leave instants of those that left, sorted.
    left: Vec<u64>,
    closed_ns: u64,
    /// (sender, seq) → (owed first deliveries, the last one's instant).
    deliveries: HashMap<(u32, u64), (u32, u64)>,
}

impl Members {
    fn new(record: &ShardRecord) -> Members {
        let t = &record.tallies;
        let mut joined: Vec<u64> = t.members.iter().map(|m| m.joined_ns).collect();
        let mut left: Vec<u64> = t.members.iter().filter_map(|m| m.left_ns).collect();
        joined.sort_unstable();
        left.sort_unstable();
        Members {
            joined,
            left,
            closed_ns: t.closed_ns,
            deliveries: t
                .deliveries
                .iter()
                .map(|d| ((d.sender, d.seq), (d.delivered, d.last_ns)))
                .collect(),
        }
    }

    /// Receivers owed a probe sent at `sent_ns` (joined at or before it, not left by then):
    /// `MemberSpan::owes`, counted with two binary searches (a leave comes after its join).
    fn owed(&self, sent_ns: u64) -> u64 {
        let joined = self.joined.partition_point(|&j| j <= sent_ns);
        let left = self.left.partition_point(|&l| l <= sent_ns);
        joined.saturating_sub(left) as u64
    }
}

/// Loss, censoring and fan-out over the union of sent probes.
struct Accounting {
    delivery: Delivery,
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
    fanout: Histogram<u64>,
    censored: u64,
    censored_from_us: Option<u64>,
    fanout_censored_from_us: Option<u64>,
    probes: u64,
    inconsistent_pairs: u64,
}

fn us_between(from_ns: u64, to_ns: u64) -> u64 {
    (to_ns.saturating_sub(from_ns) / 1_000).max(1)
}

fn min_opt(a: Option<u64>, b: u64) -> Option<u64> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn account(inputs: &[ShardInput]) -> Result<Accounting, MergeError> {
    let t0 = &inputs[0].record.tallies;
    let measured = |ns: u64| ns >= t0.window_from_ns && ns < t0.window_to_ns;
    let members: Vec<Members> = inputs.iter().map(|i| Members::new(&i.record)).collect();
    let last_close = members.iter().map(|m| m.closed_ns).max().unwrap_or(0);
    let mut a = Accounting {
        delivery: Delivery::default(),
        corrected: new_latency_histogram(),
        uncorrected: new_latency_histogram(),
        fanout: new_latency_histogram(),
        censored: 0,
        censored_from_us: None,
        fanout_censored_from_us: None,
        probes: 0,
        inconsistent_pairs: 0,
    };
    for i in inputs {
        let run = &i.results.runs[0];
        // Same bounds everywhere (`new_latency_histogram`), so `add` cannot fail.
        let _ = a.corrected.add(run.latency.histogram_corrected.decode()?);
        let _ = a
            .uncorrected
            .add(run.latency.histogram_uncorrected.decode()?);
        let d = &run.delivery;
        a.delivery.duplicates += d.duplicates;
        a.delivery.out_of_order += d.out_of_order;
        a.delivery.delivered_by_catchup += d.delivered_by_catchup;
        a.delivery.extra_deliveries += d.extra_deliveries;
    }
    let sent = inputs
        .iter()
        .flat_map(|i| &i.record.tallies.sent)
        .filter(|p| measured(p.intended_ns));
    for p in sent {
        account_probe(&mut a, p, &members, last_close);
    }
    a.delivery.missing = a.delivery.expected - a.delivery.delivered;
    Ok(a)
}

/// One measured probe: owed, delivered and missing pairs in every shard.
fn account_probe(a: &mut Accounting, p: &SentProbe, members: &[Members], last_close: u64) {
    let (mut expected, mut delivered, mut last) = (0u64, 0u64, 0u64);
    for m in members {
        let owed = m.owed(p.sent_ns);
        let (got, at) = m
            .deliveries
            .get(&(p.sender, p.seq))
            .copied()
            .unwrap_or((0, 0));
        let got = u64::from(got);
        if got > owed {
            a.inconsistent_pairs += got - owed;
        }
        let got = got.min(owed);
        let missing = owed - got;
        if missing > 0 {
            // Censored at this shard's close, as a single run censors at its own.
            let corrected = us_between(p.intended_ns, m.closed_ns);
            a.corrected.saturating_record_n(corrected, missing);
            a.uncorrected
                .saturating_record_n(us_between(p.sent_ns, m.closed_ns), missing);
            a.censored += missing;
            a.censored_from_us = min_opt(a.censored_from_us, corrected);
        }
        expected += owed;
        delivered += got;
        last = last.max(at);
    }
    let d = &mut a.delivery;
    match p.status {
        SentStatus::Accepted => d.probes_sent += 1,
        SentStatus::Failed => {
            d.probes_failed += 1;
            d.missing_from_failed_sends += expected - delivered;
        }
        SentStatus::Unanswered => {
            d.probes_unanswered += 1;
            d.missing_from_failed_sends += expected - delivered;
        }
    }
    d.expected += expected;
    d.delivered += delivered;
    if expected > 0 {
        a.probes += 1;
    }
    if expected > 0 && delivered == expected {
        a.fanout.saturating_record(us_between(p.intended_ns, last));
    } else if expected > delivered {
        let us = us_between(p.intended_ns, last_close);
        a.fanout.saturating_record(us);
        a.fanout_censored_from_us = min_opt(a.fanout_censored_from_us, us);
    }
}

fn sum_histograms<'a>(
    hs: impl Iterator<Item = &'a EncodedHistogram>,
) -> Result<Histogram<u64>, MergeError> {
    let mut sum = new_latency_histogram();
    for h in hs {
        let _ = sum.add(h.decode()?);
    }
    Ok(sum)
}

fn encode(h: &Histogram<u64>) -> EncodedHistogram {
    // Encoding into memory fails only on I/O: never here.
    EncodedHistogram::encode(h).unwrap_or_default()
}

fn merge(
    inputs: &[ShardInput],
    missing: Vec<u32>,
    unreadable: Vec<Unreadable>,
) -> Result<Merged, MergeError> {
    let a = account(inputs)?;
    let runs: Vec<&RunResult> = inputs.iter().map(|i| &i.results.runs[0]).collect();
    let tallies = || inputs.iter().map(|i| &i.record.tallies);
    let mut r = runs[0].clone();
    // Per-node figures (`--target URL1,URL2,…`) are one shard's: not merged (yet), so left out.
    r.nodes = None;
    r.latency = LatencyResult {
        corrected: LatencyStats::with_censored(&a.corrected, a.censored, a.censored_from_us),
        uncorrected: LatencyStats::with_censored(&a.uncorrected, a.censored, None),
        fanout: LatencyStats::with_censored(&a.fanout, 0, a.fanout_censored_from_us),
        histogram_corrected: encode(&a.corrected),
        histogram_uncorrected: encode(&a.uncorrected),
        histogram_fanout: encode(&a.fanout),
        probes: a.probes,
        intervals: Vec::new(),
    };
    r.delivery = a.delivery;
    sum_counts(&mut r, &runs);
    r.schedule.achieved_sends = r.delivery.probes_sent;
    r.schedule.failed_sends = r.delivery.probes_failed + r.delivery.probes_unanswered;
    let send_lag = sum_histograms(tallies().map(|t| &t.send_lag))?;
    let poll_lag = sum_histograms(tallies().map(|t| &t.poll_lag))?;
    let poll_answer = sum_histograms(tallies().map(|t| &t.poll_answer))?;
    generator_error(&mut r, &runs, &send_lag, &poll_lag);
    if let Some(polls) = r.polls.as_mut() {
        polls.answer_time = LatencyStats::from_histogram(&poll_answer);
        polls.stale_answers = runs
            .iter()
            .filter_map(|r| r.polls.as_ref())
            .map(|p| p.stale_answers)
            .sum();
    }
    let first = &inputs[0].record;
    if !missing.is_empty() || !unreadable.is_empty() {
        r.outcome = Outcome::Failed {
            detail: format!(
                "merged without shards {missing:?} of {} ({} folders unreadable)",
                first.count,
                unreadable.len()
            ),
        };
    } else if let Some(bad) = runs.iter().find(|r| r.outcome != Outcome::Completed) {
        r.outcome = bad.outcome.clone();
    }
    r.warnings = warnings(&r, &runs, &missing, first.count);
    r.saturated = r.warnings.iter().any(Warning::is_saturation);
    let clocks: Vec<&clock::ClockFacts> = inputs.iter().map(|i| &i.record.clock).collect();
    let spread_ns = clock::spread_ns(&clocks);
    let info = MergedInfo {
        run_id: first.run_id.clone(),
        count: first.count,
        shards: inputs
            .iter()
            .map(|i| MergedShard {
                index: i.record.index,
                folder: i.dir.display().to_string(),
                outcome: i.results.runs[0].outcome.to_string(),
                clients_connected: i.results.runs[0].clients.connected,
                probes_sent: i.results.runs[0].delivery.probes_sent
                    + i.results.runs[0].delivery.probes_failed
                    + i.results.runs[0].delivery.probes_unanswered,
            })
            .collect(),
        missing,
        unreadable,
        clock: ClockAgreement {
            spread_ns,
            max_anchor_uncertainty_ns: clocks
                .iter()
                .map(|c| c.anchor_uncertainty_ns)
                .max()
                .unwrap_or(0),
            note: match spread_ns {
                Some(_) => "shards on one machine: latencies across shards include at most this spread".into(),
                None => "shards on several machines (or one shard): latencies across machines include their wall clocks' offset, which the merge cannot measure; keep them NTP/PTP-synchronised".into(),
            },
        },
        inconsistent_pairs: a.inconsistent_pairs,
        merge_ms: 0.0,
    };
    let mut results = inputs[0].results.clone();
    results.tool = crate::driver::tool_info();
    results.started_unix = inputs
        .iter()
        .map(|i| i.results.started_unix)
        .min()
        .unwrap_or(0);
    results.runs = vec![r];
    Ok(Merged { results, info })
}

/// Sums (and maxima) of what every shard counted on its own.
fn sum_counts(r: &mut RunResult, runs: &[&RunResult]) {
    let (t, c, s) = (&mut r.traffic, &mut r.clients, &mut r.schedule);
    *t = Default::default();
    *c = Default::default();
    let (achieved, failed) = (s.achieved_sends, s.failed_sends);
    *s = Default::default();
    (s.achieved_sends, s.failed_sends) = (achieved, failed);
    r.timings = Default::default();
    r.resources.generator = Default::default();
    // Each shard's server memory counted its own receivers against a server the other shards
    // were connecting to as well: not a figure of the merged run.
    r.resources.server_memory = None;
    for x in runs {
        let q = &x.traffic.requests;
        t.requests.receiver_requests += q.receiver_requests;
        t.requests.empty_polls += q.empty_polls;
        t.requests.not_modified += q.not_modified;
        t.requests.posts += q.posts;
        t.requests.control_bytes_up += q.control_bytes_up;
        t.requests.control_bytes_down += q.control_bytes_down;
        for (k, v) in &q.errors {
            *t.requests.errors.entry(k.clone()).or_default() += v;
        }
        t.bytes_up += x.traffic.bytes_up;
        t.bytes_down += x.traffic.bytes_down;
        t.receiver_bytes += x.traffic.receiver_bytes;
        t.connections_opened += x.traffic.connections_opened;
        t.deliveries += x.traffic.deliveries;
        let (m, xm) = (&mut t.measured, &x.traffic.measured);
        m.seconds = m.seconds.max(xm.seconds);
        m.receiver_requests += xm.receiver_requests;
        m.empty_polls += xm.empty_polls;
        m.receiver_bytes_up += xm.receiver_bytes_up;
        m.receiver_bytes_down += xm.receiver_bytes_down;
        m.deliveries += xm.deliveries;
        c.planned += x.clients.planned;
        c.connected += x.clients.connected;
        c.failed += x.clients.failed;
        s.planned_sends += x.schedule.planned_sends;
        s.late_sends += x.schedule.late_sends;
        s.planned_polls += x.schedule.planned_polls;
        s.achieved_polls += x.schedule.achieved_polls;
        s.skipped_polls += x.schedule.skipped_polls;
        s.late_polls += x.schedule.late_polls;
        let tm = &mut r.timings;
        tm.connect_ms = tm.connect_ms.max(x.timings.connect_ms);
        tm.warmup_ms = tm.warmup_ms.max(x.timings.warmup_ms);
        tm.measure_ms = tm.measure_ms.max(x.timings.measure_ms);
        tm.drain_ms = tm.drain_ms.max(x.timings.drain_ms);
        tm.total_ms = tm.total_ms.max(x.timings.total_ms);
        // The generator is every shard's process together.
        let g = &mut r.resources.generator;
        g.cpu_seconds += x.resources.generator.cpu_seconds;
        g.cpu_percent += x.resources.generator.cpu_percent;
        g.peak_rss_bytes += x.resources.generator.peak_rss_bytes;
    }
}

/// The generator's own error over every shard: send and poll lag added exactly, the worst
/// shard's loop lag, the busiest threads of all (named by shard).
fn generator_error(
    r: &mut RunResult,
    runs: &[&RunResult],
    send_lag: &Histogram<u64>,
    poll_lag: &Histogram<u64>,
) {
    let g = &mut r.generator_error;
    g.send_lag = LatencyStats::from_histogram(send_lag);
    g.poll_lag = LatencyStats::from_histogram(poll_lag);
    if let Some(worst) = runs
        .iter()
        .max_by_key(|x| x.generator_error.loop_lag.p99_us)
    {
        g.loop_lag = worst.generator_error.loop_lag.clone();
    }
    let mut threads: Vec<ThreadCpuUsage> = Vec::new();
    g.loop_lag_threads.clear();
    for (i, x) in runs.iter().enumerate() {
        for t in &x.generator_error.threads {
            threads.push(ThreadCpuUsage {
                thread: format!("shard{i}/{}", t.thread),
                ..t.clone()
            });
        }
        for t in &x.generator_error.loop_lag_threads {
            let mut t = t.clone();
            t.thread = format!("shard{i}/{}", t.thread);
            g.loop_lag_threads.push(t);
        }
    }
    threads.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent));
    threads.truncate(THREADS_LISTED);
    g.threads = threads;
}

/// The shards' own warnings about their process and the server (one of each kind), and the
/// whole run's generator and delivery warnings computed anew (a shard's own are about its
/// part only).
fn warnings(r: &RunResult, runs: &[&RunResult], missing: &[u32], count: u32) -> Vec<Warning> {
    let mut w: Vec<Warning> = Vec::new();
    if !missing.is_empty() {
        w.push(Warning::ShardsMissing {
            missing: missing.to_vec(),
            count,
        });
    }
    // The generator's own error is judged anew on the merged figures, below.
    let judged_here = |x: &Warning| {
        matches!(
            x,
            Warning::GeneratorLag { .. }
                | Warning::LateSends { .. }
                | Warning::LatePolls { .. }
                | Warning::ThreadSaturated { .. }
        )
    };
    let per_process = |x: &Warning| {
        (x.is_saturation() && !judged_here(x))
            || matches!(
                x,
                Warning::ServerUsageUnavailable
                    | Warning::FellBackToFullList
                    | Warning::TargetOutage { .. }
            )
    };
    // One of each kind, from the first shard that raised it (shards are sorted by index).
    for x in runs
        .iter()
        .flat_map(|r| &r.warnings)
        .filter(|x| per_process(x))
    {
        let kind = std::mem::discriminant(x);
        if !w.iter().any(|y| std::mem::discriminant(y) == kind) {
            w.push(x.clone());
        }
    }
    let p50 = r.latency.corrected.p50_us;
    for x in crate::summary::generator_warnings(&r.generator_error, &r.schedule, p50, p50) {
        w.push(x);
    }
    if r.latency.probes < FEW_SAMPLES {
        w.push(Warning::TooFewSamples {
            count: r.latency.probes,
        });
    }
    if r.schedule.failed_sends > 0 {
        w.push(Warning::FailedSends {
            failed: r.schedule.failed_sends,
            planned: r.schedule.planned_sends,
        });
    }
    if r.clients.failed > 0 {
        w.push(Warning::ClientsFailed {
            failed: r.clients.failed,
            planned: r.clients.planned,
        });
    }
    if r.delivery.missing > 0 {
        w.push(Warning::MessagesLost {
            missing: r.delivery.missing,
            expected: r.delivery.expected,
        });
    }
    if let Some(p) = r.polls.as_ref().filter(|p| p.stale_answers > 0) {
        w.push(Warning::StaleAnswers {
            count: p.stale_answers,
        });
    }
    w
}

/// Writes the merged report folder: every format of a single run, `results.json` with the
/// `merged` key (also alone in `merged.json`), and a shards section at the end of `summary.md`.
pub fn write(merged: &Merged, out: &Path) -> Result<PathBuf, MergeError> {
    crate::report::write_all(&merged.results, out)?;
    let path = out.join("results.json");
    let fail = |source| MergeError::Write {
        path: path.clone(),
        source,
    };
    let mut value =
        serde_json::to_value(&merged.results).map_err(|e| fail(std::io::Error::other(e)))?;
    if let serde_json::Value::Object(map) = &mut value {
        let info =
            serde_json::to_value(&merged.info).map_err(|e| fail(std::io::Error::other(e)))?;
        map.insert("merged".into(), info);
    }
    let json = serde_json::to_vec_pretty(&value).map_err(|e| fail(std::io::Error::other(e)))?;
    std::fs::write(&path, json).map_err(fail)?;
    // The same, apart: `loadgen report` re-renders results.json from the schema alone.
    let info_path = out.join("merged.json");
    let info =
        serde_json::to_vec_pretty(&merged.info).map_err(|e| fail(std::io::Error::other(e)))?;
    std::fs::write(&info_path, info).map_err(|source| MergeError::Write {
        path: info_path.clone(),
        source,
    })?;
    let md = out.join("summary.md");
    let mut text = std::fs::read_to_string(&md).unwrap_or_default();
    text.push_str(&shards_section(&merged.info));
    std::fs::write(&md, text).map_err(|source| MergeError::Write { path: md, source })?;
    Ok(path)
}

/// The Markdown (and terminal) account of a merge's shards.
pub fn shards_section(info: &MergedInfo) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(
        s,
        "\n## Merged from {} of {} shards (run `{}`)\n",
        info.shards.len(),
        info.count,
        info.run_id
    );
    let _ = writeln!(s, "| shard | outcome | clients | probes sent | folder |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    for sh in &info.shards {
        let _ = writeln!(
            s,
            "| {}/{} | {} | {} | {} | {} |",
            sh.index, info.count, sh.outcome, sh.clients_connected, sh.probes_sent, sh.folder
        );
    }
    if !info.missing.is_empty() {
        let _ = writeln!(
            s,
            "\n**WARNING: shards {:?} are missing: this is not the whole run.**",
            info.missing
        );
    }
    for u in &info.unreadable {
        let _ = writeln!(s, "\n**WARNING: {} unreadable: {}**", u.folder, u.error);
    }
    let spread = info
        .clock
        .spread_ns
        .map_or("not measurable".to_string(), |ns| {
            format!("{:.1} µs", ns as f64 / 1e3)
        });
    let _ = writeln!(
        s,
        "\nClock: start-instant spread between shards {spread}; {}. Merge took {:.0} ms.",
        info.clock.note, info.merge_ms
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::MemberSpan;
    use proptest::prelude::*;

    fn members(spans: &[MemberSpan]) -> Members {
        let mut joined: Vec<u64> = spans.iter().map(|m| m.joined_ns).collect();
        let mut left: Vec<u64> = spans.iter().filter_map(|m| m.left_ns).collect();
        joined.sort_unstable();
        left.sort_unstable();
        Members {
            joined,
            left,
            closed_ns: 0,
            deliveries: HashMap::new(),
        }
    }

    proptest! {
        /// The merge's two binary searches count exactly the spans that owe a probe.
        #[test]
        fn owed_counts_exactly_the_spans_that_owe(
            raw in proptest::collection::vec((0u64..1000, proptest::option::of(0u64..1000)), 0..50),
            at in 0u64..1100,
        ) {
            let spans: Vec<MemberSpan> = raw
                .iter()
                .map(|&(j, l)| MemberSpan { joined_ns: j, left_ns: l.map(|l| j + l) })
                .collect();
            let expected = spans.iter().filter(|s| s.owes(at)).count() as u64;
            prop_assert_eq!(members(&spans).owed(at), expected);
        }
    }
}
