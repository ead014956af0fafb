//! One run, phase by phase: start (or find) the server, connect the receivers at a ramp, warm
//! up, measure, drain, stop — and turn what was counted into a [`RunResult`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::context::{Receiver, RunContext};
use crate::control::{self, ControlError, DeathNote};
use crate::counters::CounterSnapshot;
use crate::loop_lag::LoopLag;
use crate::net::{HttpConn, TargetAddr};
use crate::progress::{self, Phase};
use crate::recorder::Recorder;
use crate::resources::{self, LimitError};
use crate::results::{self, RunResult, Timings};
use crate::scenario::{Scenario, StrategySpec};
use crate::sender::{self, SenderPlan};
use crate::strategy::{Strategy, UnsupportedStrategy};
use crate::summary::{self, RunFacts, ServerSide};
use crate::target::{ChildServer, TargetError, TargetUrl};
use crate::thread_cpu;

/// Receivers still connecting this long after the ramp ended count as failed.
const CONNECT_GRACE: Duration = Duration::from_secs(15);
/// How long stopped receivers get to finish the request they are in.
const STOP_GRACE: Duration = Duration::from_secs(12);

/// Period of the loop-lag ticker (see [`crate::loop_lag`]).
const LOOP_LAG_PERIOD: Duration = Duration::from_millis(10);

/// What the caller (CLI, sweeps, tests) controls about a run besides its scenario.
#[derive(Debug, Clone, Default)]
pub struct RunHooks {
    /// A bar to show live counters on (the caller decides whether it is visible).
    pub progress: Option<indicatif::ProgressBar>,
    /// Cancel to stop the run early (Ctrl-C); partial results are returned.
    pub cancel: CancellationToken,
    /// Executable to re-run as `serve-chat` when no `--target` is given; `None`: this executable.
    pub server_exe: Option<PathBuf>,
    /// Run as one shard of a sharded run (`--shard`, see [`crate::shard`]).
    pub shard: Option<crate::shard::ShardRun>,
    /// Open every connection from this local address (`--source-ip`).
    pub source_ip: Option<std::net::IpAddr>,
}

/// Why a run could not start. (A server that dies mid-run is an outcome, not an error.)
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Unsupported(#[from] UnsupportedStrategy),
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    #[error(transparent)]
    Reach(#[from] crate::nodes::ReachError),
    #[error(transparent)]
    Safety(#[from] crate::safety::SafetyError),
    #[error("cannot find this executable to start the chat server from: {0}")]
    CurrentExe(std::io::Error),
    #[error(transparent)]
    Scenario(#[from] crate::scenario::InvalidScenario),
}

pub use crate::resources::machine_info;

/// This tool's name, version and the git commit it was built from (see `build.rs`).
pub fn tool_info() -> results::ToolInfo {
    results::ToolInfo {
        name: env!("CARGO_PKG_NAME").to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("PUSHPOLL_GIT_COMMIT").map(str::to_string),
    }
}

/// The server under test for one run.
pub enum Server {
    Child(ChildServer),
    /// A `--target`; `pid` when it is another process on this machine whose /proc is readable.
    Remote {
        url: String,
        pid: Option<u32>,
    },
    /// `--target URL1,URL2,…`: several nodes of one chat (see [`crate::nodes`]).
    Nodes {
        url: String,
        nodes: Vec<crate::nodes::NodeTarget>,
    },
}

impl Server {
    fn child(&self) -> Option<&ChildServer> {
        match self {
            Server::Child(c) => Some(c),
            Server::Remote { .. } | Server::Nodes { .. } => None,
        }
    }

    /// The server's process, when its CPU and memory can be read from /proc.
    fn pid(&self) -> Option<u32> {
        match self {
            Server::Child(c) => c.pid,
            Server::Remote { pid, .. } => *pid,
            Server::Nodes { .. } => None,
        }
    }

    fn label(&self) -> String {
        match self {
            Server::Child(_) => "spawned".to_string(),
            Server::Remote { url, .. } | Server::Nodes { url, .. } => url.clone(),
        }
    }
}

/// Every check that needs no server: the scenario's numbers, the open files the run needs (the
/// limit is raised here when it can be), the planned request and connect rates against the
/// safety ceilings, and the `--target` address (parsed, resolved, loopback unless
/// `--allow-remote`). A sweep runs it for every strategy before the first run starts, and
/// [`run_strategy`] runs it again for callers that come straight here.
pub async fn preflight(scenario: &Scenario, spec: &StrategySpec) -> Result<(), RunError> {
    scenario.check()?;
    resources::ensure_fd_limit(
        scenario.clients.get() as u64,
        1,
        (scenario.senders.get() * sender::MAX_IN_FLIGHT) as u64,
    )?;
    crate::safety::check_request_rate(scenario, spec)?;
    crate::safety::check_connect_rate(scenario)?;
    match &scenario.target {
        Some(list) if list.contains(',') => {
            for (_, parsed) in crate::nodes::parse_list(list)? {
                parsed.resolve(scenario.allow_remote).await?;
            }
        }
        Some(url) => {
            TargetUrl::parse(url)?
                .resolve(scenario.allow_remote)
                .await?;
        }
        None => {}
    }
    Ok(())
}

/// Runs `spec` under `scenario` and returns what it measured.
pub async fn run_strategy(
    scenario: &Scenario,
    spec: &StrategySpec,
    hooks: &RunHooks,
) -> Result<RunResult, RunError> {
    preflight(scenario, spec).await?;
    let (server, target) = start_server(scenario, hooks).await?;
    let target = Arc::new(Arc::unwrap_or_clone(target).with_source(hooks.source_ip));
    let result = run_on(scenario, spec, hooks, &server, target).await;
    if let Server::Child(child) = server {
        child.stop().await;
    }
    result
}

async fn start_server(
    scenario: &Scenario,
    hooks: &RunHooks,
) -> Result<(Server, Arc<TargetAddr>), RunError> {
    match &scenario.target {
        Some(list) if list.contains(',') => {
            let nodes = crate::nodes::reach_all(list, scenario).await?;
            let first = Arc::new(nodes[0].target.clone());
            let url = list.clone();
            Ok((Server::Nodes { url, nodes }, first))
        }
        Some(url) => {
            let parsed = TargetUrl::parse(url)?;
            let addr = parsed.resolve(scenario.allow_remote).await?;
            let (target, pid) = crate::nodes::reach(&parsed, addr, scenario).await?;
            let server = Server::Remote {
                url: url.clone(),
                pid,
            };
            Ok((server, Arc::new(target)))
        }
        None => {
            let exe = match &hooks.server_exe {
                Some(exe) => exe.clone(),
                None => std::env::current_exe().map_err(RunError::CurrentExe)?,
            };
            let child = ChildServer::spawn(&exe, &[]).await?;
            let target = child.target_addr()?;
            let target =
                crate::access::reach(target, "", false, &scenario.access, &scenario.safety).await?;
            Ok((Server::Child(child), Arc::new(target)))
        }
    }
}

async fn run_on(
    scenario: &Scenario,
    spec: &StrategySpec,
    hooks: &RunHooks,
    server: &Server,
    target: Arc<TargetAddr>,
) -> Result<RunResult, RunError> {
    let shard = hooks.shard.as_ref();
    // A shard's epoch is the run's shared start instant (see `shard::clock`).
    let epoch = shard.map_or_else(Instant::now, |s| s.anchor.epoch);
    let offsets = SendPlan::offsets(scenario);
    // The probe table needs a slot per sequence number any sender may use.
    let per_sender = offsets.iter().map(|o| o.len()).max().unwrap_or(0);
    let run_id = shard.map_or_else(rand::random, |s| s.plan.probe_run_id());
    let mut recorder = Recorder::new(epoch, run_id, scenario.senders.get(), per_sender);
    if shard.is_some() {
        recorder = recorder.into_sharded(&offsets, 0);
    }
    let mut ctx = RunContext::new(target, recorder, hooks.cancel.child_token());
    if let Server::Nodes { nodes, .. } = server {
        ctx.nodes = crate::nodes::Nodes::several(nodes, hooks.source_ip, &ctx.counters);
    }
    let ctx = Arc::new(ctx);
    // Too many 429/5xx answers stop the run at once (the reason becomes its outcome below).
    let guard = ctx.target.access.guard.clone();
    let abort = ctx.abort.clone();
    let disarm = CancellationToken::new();
    let _disarm_on_return = disarm.clone().drop_guard();
    tokio::spawn(async move {
        tokio::select! {
            () = guard.tripped().cancelled() => abort.cancel(),
            () = disarm.cancelled() => {}
        }
    });
    let caps = control::detect(&ctx.target, &ctx.counters.control_wire, spec.kind).await?;
    let strategy = Strategy::new(spec, &caps, scenario.seed)?;
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let bar = hooks
        .progress
        .clone()
        .map(|bar| tokio::spawn(progress::follow(bar, ctx.clone(), phase_rx)));
    let note = DeathNote::default();
    let outages = control::Outages::default();
    let stop_watch = CancellationToken::new();
    let watch_conn = HttpConn::new(ctx.target.clone(), ctx.counters.control_wire.clone());
    let watchdog = control::watchdog(
        watch_conn,
        server.child(),
        stop_watch.clone(),
        ctx.abort.clone(),
        &note,
        &outages,
    );
    let runtime = tokio::runtime::Handle::current();
    let workers = runtime.metrics().num_workers();
    let loop_lag = LoopLag::start(&runtime, workers, LOOP_LAG_PERIOD, &ctx.stop_receivers).ok();
    let phases = async {
        let mut facts = run_phases(
            &ctx,
            scenario,
            &offsets,
            &strategy,
            server,
            &phase_tx,
            loop_lag.as_ref(),
            shard,
        )
        .await;
        stop_watch.cancel();
        facts.seed = scenario.seed;
        facts
    };
    let (mut facts, metrics_peak_rss) = tokio::join!(phases, watchdog);
    phase_tx.send_replace(Phase::Done);
    if let Some(bar) = bar {
        let _ = bar.await;
    }
    if let ServerSide::Metrics(usage) = &mut facts.server {
        usage.peak_rss_bytes = usage.peak_rss_bytes.max(metrics_peak_rss.unwrap_or(0));
    }
    facts.outcome = summary::outcome(
        note.detail(),
        hooks.cancel.is_cancelled(),
        facts.clients.connected,
    );
    if let Some(reason) = ctx.target.access.guard.reason() {
        facts.outcome = results::Outcome::Failed {
            detail: reason.to_string(),
        };
    }
    facts.target = server.label();
    let ms_since = |t: Instant| {
        t.saturating_duration_since(ctx.recorder.epoch())
            .as_secs_f64()
            * 1e3
    };
    facts.outages = outages
        .windows(Instant::now())
        .into_iter()
        .map(|(from, to)| results::OutageWindow {
            from_ms: ms_since(from),
            to_ms: ms_since(to),
        })
        .collect();
    if let Some(lag) = loop_lag {
        lag.finish().await;
    }
    if let Some(shard) = shard {
        *shard.tallies.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(ctx.recorder.shard_tallies());
    }
    Ok(summary::assemble(&ctx, spec, &strategy, facts))
}

/// Connect, warm-up, measure, drain, stop: each wait ends early when the run is aborted, so an
/// interrupted run still walks through every step and reports what it had.
// One argument over clippy's limit: the shard (`--shard`) joined an already full list, and
// bundling unrelated arguments into a struct would only hide them.
#[allow(clippy::too_many_arguments)]
async fn run_phases(
    ctx: &Arc<RunContext>,
    scenario: &Scenario,
    offsets: &[Arc<[Duration]>],
    strategy: &Strategy,
    server: &Server,
    phase: &watch::Sender<Phase>,
    loop_lag: Option<&LoopLag>,
    shard: Option<&crate::shard::ShardRun>,
) -> RunFacts {
    let start = Instant::now();
    // A shard runs clients index mod N = I, at its share of the connect rate.
    let spec = shard.map(|s| s.plan.spec);
    let ids: Vec<usize> = (0..scenario.clients.get())
        .filter(|&i| spec.is_none_or(|s| s.owns(i)))
        .collect();
    let clients = ids.len();
    let connect_rate = scenario.connect_rate / f64::from(spec.map_or(1, |s| s.count));
    let ramp = Duration::from_secs_f64(clients as f64 / connect_rate.max(1e-3));
    // The server's memory per connection: its RSS now (up, before any receiver) against its RSS
    // with them connected. Only for one server process read from /proc, and not in a shard
    // (other shards connect to the same server meanwhile).
    let server_pid = server
        .pid()
        .filter(|_| shard.is_none() && !ctx.nodes.is_several());
    let rss = || server_pid.and_then(resources::resident_bytes);
    let server_baseline = rss();
    let spawner = tokio::spawn(spawn_receivers(
        ctx.clone(),
        strategy.clone(),
        ids,
        connect_rate,
    ));
    wait_connected(ctx, clients as u64, start + ramp + CONNECT_GRACE).await;
    let connected = ctx.counters.connected.load(Relaxed);
    let connect_end = Instant::now();
    let server_idle = rss();

    // A shard's schedule starts at the shared start instant, its recorder's epoch.
    let origin = shard.map_or_else(Instant::now, |_| ctx.recorder.epoch());
    let mut plan = SendPlan::new(origin, scenario, offsets);
    if let Some(spec) = spec {
        plan.senders.retain(|p| spec.owns(p.index as usize));
    }
    ctx.nodes
        .place_senders(plan.senders.iter().map(|p| p.index));
    let (at_from, at_to) = send_and_measure(ctx, &plan, connected, server, phase, loop_lag).await;
    let server_sent = rss();
    drain(ctx, Instant::now() + scenario.drain).await;
    let drain_end = Instant::now();
    // The run closes: POSTs still in flight stay unanswered, missing pairs are censored here.
    ctx.stop_sends.cancel();
    ctx.recorder.close(drain_end);
    let gen_end = resources::sample(None).unwrap_or_default();
    let server_end = server.pid().and_then(|pid| resources::sample(Some(pid)));
    let server_drained = rss();
    ctx.stop_receivers.cancel();
    join_within(spawner.await.unwrap_or_default(), STOP_GRACE).await;
    let end = Instant::now();

    let window = at_to.at.saturating_duration_since(at_from.at);
    let generator = results::ProcessUsage {
        peak_rss_bytes: gen_end.peak_rss_bytes,
        ..resources::usage_between(at_from.generator, at_to.generator, window)
    };
    ctx.nodes.set_window(&at_from.nodes, &at_to.nodes, window);
    let server_memory = server_baseline
        .zip(server_idle)
        .and_then(|(baseline, idle)| {
            let peak = [server_sent, server_drained]
                .into_iter()
                .flatten()
                .fold(idle, u64::max);
            results::ServerMemory::new(baseline, idle, peak, connected)
        });
    let server = ServerSide::from_snapshots(&at_from.server, &at_to.server, server_end, window);
    let other_cpu_percent = other_cpu_percent(&at_from, &at_to, &generator, &server, window);
    RunFacts {
        timings: Timings {
            connect_ms: ms(connect_end - start),
            warmup_ms: ms(at_from.at.saturating_duration_since(plan.origin)),
            measure_ms: ms(window),
            drain_ms: ms(drain_end.saturating_duration_since(at_to.at)),
            total_ms: ms(end - start),
        },
        clients: results::ClientCounts {
            planned: clients as u64,
            connected,
            failed: clients as u64 - connected,
        },
        window: at_to.counters.since(&at_from.counters),
        window_seconds: window.as_secs_f64(),
        planned_sends: plan.planned_sends(),
        planned_polls: planned_polls(strategy, connected, window),
        generator,
        server,
        server_memory,
        other_cpu_percent,
        outcome: results::Outcome::Completed,
        target: String::new(),
        outages: Vec::new(),
        loop_lag: at_to.loop_lag.clone(),
        threads: thread_cpu::busiest_between(&at_from.threads, &at_to.threads, window),
        seed: 0,
    }
}

/// The senders' schedules: warm-up from `origin`, then the measured window.
struct SendPlan {
    origin: Instant,
    measure_from: Instant,
    measure_to: Instant,
    senders: Vec<SenderPlan>,
}

impl SendPlan {
    /// Every sender's intended send offsets, from the start of warm-up to the end of the
    /// measured window (computed once per run: they also size the recorder's probe table).
    fn offsets(scenario: &Scenario) -> Vec<Arc<[Duration]>> {
        let count = scenario.senders.get();
        (0..count as u32)
            .map(|index| {
                sender::send_offsets(
                    index,
                    count,
                    scenario.rate,
                    scenario.arrivals,
                    scenario.warmup + scenario.duration,
                    scenario.seed,
                )
                .into()
            })
            .collect()
    }

    fn new(origin: Instant, scenario: &Scenario, offsets: &[Arc<[Duration]>]) -> SendPlan {
        let measure_from = origin + scenario.warmup;
        let measure_to = measure_from + scenario.duration;
        let senders = offsets
            .iter()
            .zip(0u32..)
            .map(|(offsets, index)| SenderPlan {
                index,
                origin,
                offsets: offsets.clone(),
                payload_bytes: scenario.payload_bytes,
            })
            .collect();
        SendPlan {
            origin,
            measure_from,
            measure_to,
            senders,
        }
    }

    /// Probes intended inside the measured window.
    fn planned_sends(&self) -> u64 {
        self.senders
            .iter()
            .map(|p| p.count_in(self.measure_from, self.measure_to))
            .sum()
    }
}

/// Warm-up and measure: starts the senders, snapshots the counters at the window's edges and
/// waits for the senders to finish.
async fn send_and_measure(
    ctx: &Arc<RunContext>,
    plan: &SendPlan,
    connected: u64,
    server: &Server,
    phase: &watch::Sender<Phase>,
    loop_lag: Option<&LoopLag>,
) -> (Snapshot, Snapshot) {
    ctx.recorder.set_window(plan.measure_from, plan.measure_to);
    let senders: Vec<JoinHandle<()>> = if connected > 0 {
        vec![tokio::spawn(sender::run_all(
            ctx.clone(),
            plan.senders.clone(),
        ))]
    } else {
        // Nobody to deliver to: the run has failed; skip straight to the end.
        ctx.abort.cancel();
        Vec::new()
    };
    phase.send_replace(Phase::Warmup);
    wait_until(plan.measure_from, &ctx.abort).await;
    let at_from = Snapshot::take(ctx, server).await;
    if let Some(lag) = loop_lag {
        lag.reset();
    }
    phase.send_replace(Phase::Measure);
    wait_until(plan.measure_to, &ctx.abort).await;
    let mut at_to = Snapshot::take(ctx, server).await;
    at_to.loop_lag = loop_lag.map(LoopLag::snapshot);
    phase.send_replace(Phase::Drain);
    join_all(senders, &ctx.abort).await;
    (at_from, at_to)
}

/// CPU the rest of the machine used in the window (100 = one core), when the server is a
/// local child whose own CPU is known.
fn other_cpu_percent(
    from: &Snapshot,
    to: &Snapshot,
    generator: &results::ProcessUsage,
    server: &ServerSide,
    window: Duration,
) -> Option<f64> {
    let (ServerSide::Proc(server), Some(a), Some(b)) = (server, from.machine, to.machine) else {
        return None;
    };
    let busy = results::ratio(b.busy_seconds - a.busy_seconds, window.as_secs_f64()) * 100.0;
    Some((busy - generator.cpu_percent - server.cpu_percent).max(0.0))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn planned_polls(strategy: &Strategy, connected: u64, window: Duration) -> u64 {
    match strategy {
        Strategy::Poll(c) => {
            (connected as f64 * window.as_secs_f64() / c.interval.as_secs_f64()).round() as u64
        }
        _ => 0,
    }
}

/// Counters and CPU readings at a phase boundary.
struct Snapshot {
    at: Instant,
    counters: CounterSnapshot,
    generator: resources::ProcSample,
    server: control::ServerReading,
    machine: Option<resources::MachineCpu>,
    /// The generator's threads (empty where /proc cannot be read).
    threads: Vec<thread_cpu::ThreadCpu>,
    /// Set at the end of the window only.
    loop_lag: Option<crate::loop_lag::LoopLagReport>,
    /// Each node's counters and CPU (several `--target` nodes only).
    nodes: Vec<crate::nodes::NodeSample>,
}

impl Snapshot {
    async fn take(ctx: &RunContext, server: &Server) -> Snapshot {
        let at = Instant::now();
        let counters = ctx.counters.snapshot();
        let generator = resources::sample(None).unwrap_or_default();
        let machine = resources::machine_cpu();
        let nodes = ctx.nodes.sample();
        let server = match server.pid() {
            // Several nodes: their processes' sum, when every one could be read.
            _ if ctx.nodes.is_several() => crate::nodes::Nodes::summed_cpu(&nodes).map_or(
                control::ServerReading::Unavailable,
                control::ServerReading::Proc,
            ),
            Some(pid) => resources::sample(Some(pid)).map_or(
                control::ServerReading::Unavailable,
                control::ServerReading::Proc,
            ),
            None => {
                let mut conn = HttpConn::new(ctx.target.clone(), ctx.counters.control_wire.clone());
                match control::scrape(&mut conn).await {
                    Ok(m) if m.cpu_seconds.is_some() => control::ServerReading::Metrics(m),
                    _ => control::ServerReading::Unavailable,
                }
            }
        };
        Snapshot {
            at,
            counters,
            generator,
            server,
            machine,
            threads: thread_cpu::sample().unwrap_or_default(),
            loop_lag: None,
            nodes,
        }
    }
}

/// Starts the k-th receiver of `ids` at `k / rate` seconds; stops starting them when the run
/// is aborted.
async fn spawn_receivers(
    ctx: Arc<RunContext>,
    strategy: Strategy,
    ids: Vec<usize>,
    rate: f64,
) -> Vec<JoinHandle<()>> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(ids.len());
    for (k, id) in ids.into_iter().enumerate() {
        let due = start + Duration::from_secs_f64(k as f64 / rate.max(1e-3));
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = ctx.abort.cancelled() => break,
        }
        let strategy = strategy.clone();
        let rx = Receiver::new(id, ctx.clone());
        handles.push(tokio::spawn(async move { strategy.run(rx).await }));
    }
    handles
}

/// Waits until every receiver reported (connected or failed), the deadline, or an abort.
async fn wait_connected(ctx: &RunContext, clients: u64, deadline: Instant) {
    loop {
        let reported = ctx.counters.connected.load(Relaxed) + ctx.connect_failed.load(Relaxed);
        if reported >= clients {
            return;
        }
        tokio::select! {
            _ = ctx.connect_progress.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return,
            _ = ctx.abort.cancelled() => return,
        }
    }
}

async fn wait_until(t: Instant, abort: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep_until(t) => {}
        _ = abort.cancelled() => {}
    }
}

/// Waits until every measured probe settled (reached every owed receiver, or its POST
/// failed), the deadline, or an abort.
async fn drain(ctx: &RunContext, deadline: Instant) {
    loop {
        let progress = ctx.recorder.fanout_progress();
        tokio::pin!(progress);
        progress.as_mut().enable();
        if ctx.recorder.all_settled() {
            return;
        }
        tokio::select! {
            _ = progress => {}
            _ = tokio::time::sleep_until(deadline) => return,
            _ = ctx.abort.cancelled() => return,
        }
    }
}

/// Joins the senders (they stop by themselves, or at an abort).
async fn join_all(handles: Vec<JoinHandle<()>>, abort: &CancellationToken) {
    for h in handles {
        tokio::select! {
            _ = h => {}
            _ = abort.cancelled() => {}
        }
    }
}

/// Joins stopped receivers; any still running after `grace` are aborted.
async fn join_within(handles: Vec<JoinHandle<()>>, grace: Duration) {
    let deadline = Instant::now() + grace;
    for mut h in handles {
        if tokio::time::timeout_at(deadline, &mut h).await.is_err() {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tool_info_tests {
    use super::tool_info;

    /// In a git checkout, results name the commit they were built from (HEAD, since a moved
    /// HEAD reruns the build script).
    #[test]
    fn tool_info_names_the_commit_of_a_git_checkout() {
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let info = tool_info();
        assert_eq!(info.name, "loadgen");
        match (head, info.git_commit) {
            (Some(head), Some(commit)) if std::env::var_os("PUSHPOLL_GIT_COMMIT").is_none() => {
                assert!(
                    head.starts_with(&commit),
                    "{commit} is not a prefix of HEAD {head}"
                )
            }
            (Some(_), None) => panic!("built in a git checkout but no commit recorded"),
            _ => {}
        }
    }
}
