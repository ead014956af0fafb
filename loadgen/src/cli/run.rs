//! `loadgen run`: one strategy, one report folder.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::scenario_args::{ScenarioArgs, ScenarioError};
use crate::results::{Outcome, RunResult};
use crate::scenario::{PollMode, StrategyKind, StrategySpec, parse_duration};
use crate::sweep::{Execution, Sweep, SweepError};

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// poll[@INTERVAL], poll-full[@INTERVAL], poll-etag[@INTERVAL], longpoll[@WAIT], sse, socketio
    /// or socketio-polling.
    #[arg(long, default_value = "poll@1s")]
    pub strategy: StrategySpec,
    /// Polling interval T (poll only; overrides poll@T).
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// cursor: GET /messages?since=ID; full: the whole list, diffed client-side (poll only).
    #[arg(long, value_enum)]
    pub poll_mode: Option<PollMode>,
    /// Send If-None-Match with the last ETag (poll only).
    #[arg(long)]
    pub etag: bool,
    /// Long-poll wait asked of the server (longpoll only; overrides longpoll@WAIT).
    #[arg(long, value_parser = parse_duration)]
    pub wait: Option<Duration>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Folder for the report: results.json, summary.md, summary.csv, .hgrm, report.html
    /// [default: reports/run-<label>-<unix time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the run's result as JSON on stdout instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sharding: crate::shard::ShardArgs,
}

impl RunArgs {
    /// The strategy spec with the poll / long-poll flags applied.
    pub fn spec(&self) -> Result<StrategySpec, ScenarioError> {
        let mut spec = self.strategy.clone();
        let is_poll = spec.kind == StrategyKind::Poll;
        let poll_only = |flag| ScenarioError::PollOnly {
            flag,
            strategy: self.strategy.label(),
        };
        if let Some(t) = self.interval {
            if !is_poll {
                return Err(poll_only("interval"));
            }
            if t.is_zero() {
                return Err(ScenarioError::ZeroDuration { flag: "interval" });
            }
            spec.interval = Some(t);
        }
        if let Some(mode) = self.poll_mode {
            if !is_poll {
                return Err(poll_only("poll-mode"));
            }
            spec.poll_mode = mode;
        }
        if self.etag {
            if !is_poll {
                return Err(poll_only("etag"));
            }
            spec.etag = true;
        }
        if let Some(w) = self.wait {
            if spec.kind != StrategyKind::Longpoll {
                return Err(ScenarioError::LongpollOnly {
                    strategy: self.strategy.label(),
                });
            }
            spec.wait = Some(w);
        }
        Ok(spec)
    }
}

/// Why `loadgen run` failed before producing results.
#[derive(Debug, thiserror::Error)]
pub enum RunCommandError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardFlagError),
    #[error(transparent)]
    Sweep(#[from] SweepError),
    #[error("stopped (Ctrl-C) before the run started: nothing was measured")]
    NothingRan,
}

/// A finished `loadgen run`: the result and where it was written.
pub struct RunReport {
    pub result: RunResult,
    pub saved: PathBuf,
}

/// `loadgen run`: a sweep of one strategy ([`crate::sweep`]) into its report folder
/// (results.json, summary.md, summary.csv, the `.hgrm`, report.html); `cancel` stops it early
/// (partial results, still written).
pub async fn run(args: &RunArgs, cancel: CancellationToken) -> Result<RunReport, RunCommandError> {
    let scenario = args.scenario.to_scenario()?;
    let spec = args.spec()?;
    let shard = crate::shard::ShardPlan::from_args(&args.sharding, scenario.target.is_some())?
        .map(crate::shard::ShardRun::new);
    let (how, suffix) = match (args.sharding.workers, shard) {
        (Some(k), _) => (Execution::Workers(k.get()), format!("-workers{k}")),
        (None, Some(run)) => {
            let suffix = format!("-shard{}", run.plan.spec.index);
            let source_ip = args.sharding.source_ip;
            (Execution::Shard { run, source_ip }, suffix)
        }
        (None, None) => (Execution::InProcess, String::new()),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/run-{}-{}{suffix}",
            spec.label(),
            crate::sweep::unix_now()
        ))
    });
    let sweep = Sweep {
        scenario,
        strategies: vec![spec],
        out,
    };
    let outcome = crate::sweep::run(&sweep, &how, None, cancel).await?;
    let saved = outcome.out.join("results.json");
    let result = outcome
        .results
        .runs
        .into_iter()
        .next()
        .ok_or(RunCommandError::NothingRan)?;
    Ok(RunReport { result, saved })
}

/// A few lines for a human: the headline numbers and every warning.
pub fn render_summary(r: &RunResult, saved: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let (l, d, m) = (&r.latency.corrected, &r.delivery, &r.traffic.measured);
    let server_cpu = r
        .resources
        .server
        .as_ref()
        .map_or("unknown".to_string(), |s| format!("{:.0}%", s.cpu_percent));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(out, "{}: {}", r.label, r.outcome);
    if r.clients.planned == 0 {
        // It failed before any client was placed: there are no figures to show.
        let _ = writeln!(out, "  results: {}", saved.display());
        return out;
    }
    if r.traffic.wire == crate::results::Wire::Tls {
        let _ = writeln!(
            out,
            "  over TLS: bytes below are TLS records, handshakes included"
        );
    }
    let _ = writeln!(
        out,
        "  clients {}/{} connected, {} probes measured",
        r.clients.connected, r.clients.planned, d.probes_sent
    );
    let bound = |us: u64| if l.is_lower_bound(us) { "≥" } else { "" };
    let _ = writeln!(
        out,
        "  latency from intended send: p50 {}{:.1} ms  p90 {}{:.1} ms  p99 {}{:.1} ms  max {}{:.1} ms  ({} samples, {} probes)",
        bound(l.p50_us),
        ms(l.p50_us),
        bound(l.p90_us),
        ms(l.p90_us),
        bound(l.p99_us),
        ms(l.p99_us),
        bound(l.max_us),
        ms(l.max_us),
        l.count,
        r.latency.probes
    );
    for i in &r.latency.intervals {
        let _ = writeln!(
            out,
            "    p{} 95% interval over probes: {:.2}–{:.2} ms",
            i.quantile * 100.0,
            ms(i.low_us),
            ms(i.high_us)
        );
    }
    let _ = writeln!(
        out,
        "  delivery: expected {} delivered {} missing {} duplicates {} out-of-order {}",
        d.expected, d.delivered, d.missing, d.duplicates, d.out_of_order
    );
    let _ = writeln!(
        out,
        "  sends: {} planned, {} accepted, {} failed, {} late",
        r.schedule.planned_sends,
        r.schedule.achieved_sends,
        r.schedule.failed_sends,
        r.schedule.late_sends
    );
    let g = &r.generator_error;
    let _ = writeln!(
        out,
        "  generator's own error: send lag p50 {} µs p99 {} µs, loop lag p50 {} µs p99 {} µs, busiest thread {}",
        g.send_lag.p50_us,
        g.send_lag.p99_us,
        g.loop_lag.p50_us,
        g.loop_lag.p99_us,
        g.threads.first().map_or("unknown".to_string(), |t| format!(
            "{} {:.0}%",
            t.thread, t.cpu_percent
        ))
    );
    let _ = writeln!(
        out,
        "  receivers: {:.0} req/s, {:.0} bytes/s, {:.0} bytes per delivery, empty polls {:.1}%",
        m.requests_per_second(),
        m.bytes_per_second(),
        m.bytes_per_delivery(),
        m.empty_poll_ratio() * 100.0
    );
    let _ = writeln!(
        out,
        "  cpu: generator {:.0}%, server {server_cpu}",
        r.resources.generator.cpu_percent
    );
    if let Some(mem) = &r.resources.server_memory {
        let _ = writeln!(
            out,
            "  server memory: {:.1} KiB per connection ({:.1} KiB idle), {:.1} MB before and {:.1} MB with {} connections",
            mem.per_connection_bytes / 1024.0,
            mem.idle_per_connection_bytes / 1024.0,
            mem.baseline_rss_bytes as f64 / 1e6,
            mem.peak_rss_bytes as f64 / 1e6,
            mem.connections
        );
    }
    let _ = writeln!(out, "  results: {}", saved.display());
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    out
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Exit status for an outcome: 0 completed, 130 interrupted, 1 otherwise.
pub fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Completed => 0,
        Outcome::Interrupted => 130,
        Outcome::ServerDied { .. } | Outcome::Failed { .. } => 1,
    }
}
