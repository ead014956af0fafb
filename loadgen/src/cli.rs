//! The command line: `loadgen run …` (one strategy, one results.json) and the hidden
//! `loadgen serve-chat` the generator re-executes itself as to start the server under test.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::driver::{self, RunError, RunHooks};
use crate::progress;
use crate::results::{Outcome, Results, RunResult, SCHEMA_VERSION};
use crate::scenario::{Arrivals, PollMode, Scenario, StrategyKind, StrategySpec, parse_duration};

/// Simulates thousands of chat clients per delivery strategy and measures delivery latency,
/// loss and wire overhead.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one strategy against the chat server (started here, or --target) and write results.json.
    Run(RunArgs),
    /// Serve the project's chat server on the given flags (used by `run` to start its server as a
    /// child process; stops when its standard input closes).
    #[command(hide = true)]
    ServeChat(ServeChatArgs),
    /// Run several strategies one after another under one scenario and write the full report
    /// folder: results.json, summary.md, summary.csv, one .hgrm per run, report.html.
    Compare(crate::compare::CompareArgs),
    /// Re-render the reports of result folders from their results.json (no re-run); several
    /// folders are merged side by side.
    Report(crate::report::command::ReportArgs),
    /// Find the largest client count the server holds for one strategy: doubling from
    /// --clients until a step breaks (p99 above --p99, any loss, or the generator's own health),
    /// then bisecting. Writes one run folder per step, capacity.json and capacity.md.
    Capacity(crate::capacity::CapacityArgs),
    /// Merge the results folders of the shards of one run (`run --shard I/N`) into one exact
    /// result: histograms added, counters summed, loss against every shard's receivers.
    Merge(crate::shard::merge::MergeArgs),
    /// Target profiles: `profile check FILE --target URL` tries one message through every door.
    Profile {
        #[command(subcommand)]
        command: crate::profile_check::ProfileCommand,
    },
}

/// The load every strategy of a run or sweep shares.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// Receivers (simulated browsers), each with its own connection(s).
    #[arg(long, default_value = "1000")]
    pub clients: NonZeroUsize,
    /// Sender clients posting probe messages.
    #[arg(long, default_value = "4")]
    pub senders: NonZeroUsize,
    /// Aggregate probe messages per second over all senders (open loop).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Send times: `even` (one message every 1/rate) or `poisson` (random exponential gaps,
    /// seeded by --seed, like independent people chatting).
    #[arg(long, value_enum, default_value_t = Arrivals::Even)]
    pub arrivals: Arrivals,
    /// Pad each probe message to at least this many bytes.
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// Length of the measured phase (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring: messages flow but are not recorded.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest wait for late deliveries after the last measured send.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Receivers connected per second during the connect phase.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Measure this server (http://HOST:PORT) instead of starting the project's chat server;
    /// several nodes of one chat as URL1,URL2,… (clients spread over them round-robin).
    #[arg(long)]
    pub target: Option<String>,
    /// Allow a --target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Seed of the random poll phases and Poisson send times (same seed, same schedule).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub access: crate::access::AccessArgs,
    #[command(flatten)]
    pub safety: crate::safety::SafetyArgs,
}

/// A flag combination that makes no sense; names the flag.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScenarioError {
    #[error("--{flag} must be a positive number, got {value}")]
    NotPositive { flag: &'static str, value: f64 },
    #[error("--{flag} must be longer than zero")]
    ZeroDuration { flag: &'static str },
    #[error("--{flag} only applies to --strategy poll (got {strategy})")]
    PollOnly {
        flag: &'static str,
        strategy: String,
    },
    #[error("--wait only applies to --strategy longpoll (got {strategy})")]
    LongpollOnly { strategy: String },
    #[error(transparent)]
    Access(#[from] crate::access::AccessArgsError),
    #[error(transparent)]
    Safety(#[from] crate::safety::SafetyError),
}

impl ScenarioArgs {
    pub fn to_scenario(&self) -> Result<Scenario, ScenarioError> {
        for (flag, value) in [("rate", self.rate), ("connect-rate", self.connect_rate)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ScenarioError::NotPositive { flag, value });
            }
        }
        if self.duration.is_zero() {
            return Err(ScenarioError::ZeroDuration { flag: "duration" });
        }
        Ok(Scenario {
            clients: self.clients,
            senders: self.senders,
            rate: self.rate,
            arrivals: self.arrivals,
            payload_bytes: self.payload_bytes,
            duration: self.duration,
            warmup: self.warmup,
            drain: self.drain,
            connect_rate: self.connect_rate,
            target: self.target.clone(),
            allow_remote: self.allow_remote,
            seed: self.seed,
            access: self.access.to_spec()?,
            safety: self.safety.to_spec()?,
        })
    }
}

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
pub enum CliError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardFlagError),
    #[error(transparent)]
    ShardRecord(#[from] crate::shard::record::RecordError),
    #[error(transparent)]
    Workers(#[from] crate::shard::workers::WorkersError),
}

/// A finished `loadgen run`: the result and where it was written.
pub struct RunReport {
    pub result: RunResult,
    pub saved: PathBuf,
}

/// Runs `loadgen run` and writes its report folder (results.json, summary.md, summary.csv, the
/// `.hgrm`, report.html); `cancel` stops it early (partial results, still written).
pub async fn run(args: &RunArgs, cancel: CancellationToken) -> Result<RunReport, CliError> {
    let scenario = args.scenario.to_scenario()?;
    let spec = args.spec()?;
    if let Some(workers) = args.sharding.workers {
        crate::shard::check_clients(workers.get(), scenario.clients.get())?;
        return run_workers(args, workers.get(), &scenario, &spec, cancel).await;
    }
    let shard = crate::shard::ShardPlan::from_args(&args.sharding, scenario.target.is_some())?
        .map(crate::shard::ShardRun::new);
    if let Some(s) = &shard {
        crate::shard::check_clients(s.plan.spec.count, scenario.clients.get())?;
    }
    let hooks = RunHooks {
        progress: Some(progress::default_bar(&spec.label())),
        cancel,
        server_exe: None,
        shard: shard.clone(),
        source_ip: args.sharding.source_ip,
    };
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let result = driver::run_strategy(&scenario, &spec, &hooks).await?;
    let shard_suffix = shard
        .as_ref()
        .map_or(String::new(), |s| format!("-shard{}", s.plan.spec.index));
    let dir = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/run-{}-{started_unix}{shard_suffix}",
            spec.label()
        ))
    });
    let results = Results {
        schema_version: SCHEMA_VERSION,
        tool: driver::tool_info(),
        machine: driver::machine_info(),
        scenario,
        started_unix,
        runs: vec![result],
    };
    crate::report::write_all(&results, &dir)?;
    if let Some(shard) = &shard
        && let Some(tallies) = shard.take_tallies()
    {
        let record = crate::shard::record::ShardRecord::new(
            &shard.plan,
            shard.anchor.facts.clone(),
            tallies,
        );
        record.save(&dir)?;
    }
    let saved = dir.join("results.json");
    let result = results.runs.into_iter().next().expect("one run was pushed");
    Ok(RunReport { result, saved })
}

/// `loadgen run --workers K`: K shard processes of this executable, merged.
async fn run_workers(
    args: &RunArgs,
    workers: u32,
    scenario: &Scenario,
    spec: &StrategySpec,
    cancel: CancellationToken,
) -> Result<RunReport, CliError> {
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "reports/run-{}-{started_unix}-workers{workers}",
            spec.label()
        ))
    });
    let exe = std::env::current_exe().map_err(RunError::CurrentExe)?;
    let plan = crate::shard::workers::WorkersPlan::new(workers, spec, scenario, out, exe);
    let done = crate::shard::workers::run(&plan, cancel).await?;
    for (index, what) in &done.failures {
        eprintln!("warning: shard {index}/{workers} exited with {what}");
    }
    eprint!("{}", crate::shard::merge::shards_section(&done.merged.info));
    let result = done
        .merged
        .results
        .runs
        .into_iter()
        .next()
        .expect("a merge holds one run");
    Ok(RunReport {
        result,
        saved: done.saved,
    })
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

#[derive(Debug, Clone, Args)]
pub struct ServeChatArgs {
    #[command(flatten)]
    pub config: chat_server::Config,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Server(#[from] chat_server::ServerError),
}

/// `loadgen serve-chat`: binds, prints `chat-server listening on http://ADDR` (the line the
/// parent waits for), serves until Ctrl-C or until standard input closes (the parent's lifeline:
/// if the generator dies, its child does not linger).
pub async fn serve_chat(args: ServeChatArgs) -> Result<(), ServeError> {
    let addr = args.config.addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let scheme = if args.config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    println!("chat-server listening on {scheme}://{bound}");
    let shutdown = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = stdin_closed() => {}
        }
    };
    chat_server::run(listener, args.config, shutdown).await?;
    Ok(())
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
