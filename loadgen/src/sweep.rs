//! The one orchestration of the generator: a *sweep* runs strategies one after another under one
//! scenario (a fresh server per run) and writes one report folder. `loadgen run` is a sweep of
//! one strategy, `loadgen compare` a sweep of several, and every step of `loadgen capacity` a
//! sweep of one, so the results header, the output folder, the exit code and the Ctrl-C policy
//! exist once, here.
//!
//! Everything that can be checked before a server is started (the scenario, each strategy's
//! planned request rate, the target address) is checked for every strategy first
//! ([`crate::driver::preflight`]): bad input is an error before anything runs. What goes wrong
//! later is a failed run, recorded in the folder. After *every* run the whole folder is
//! rewritten, as hyperfine's `ExportManager` does, so a crash or Ctrl-C leaves everything
//! measured so far.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::driver::{RunError, RunHooks};
use crate::report::{self, ReportError};
use crate::results::{Outcome, Results, RunResult, SCHEMA_VERSION, Warning};
use crate::scenario::{Scenario, StrategySpec};

/// The strategies of the main job.
pub const DEFAULT_STRATEGIES: &str =
    "poll@100ms,poll@500ms,poll@1s,poll@5s,longpoll,sse,socketio,socketio-polling";

/// Why a sweep could not run or could not write its reports.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("--strategies names no strategy: give e.g. --strategies {DEFAULT_STRATEGIES}")]
    NoStrategies,
    #[error("--strategies names `{0}` twice: every run of a sweep needs its own label")]
    DuplicateStrategy(String),
    /// Bad input found before anything ran (see [`crate::driver::preflight`]).
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("cannot find this executable to start the workers from: {0}")]
    CurrentExe(std::io::Error),
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardFlagError),
    #[error(transparent)]
    ShardRecord(#[from] crate::shard::record::RecordError),
    #[error(transparent)]
    Merge(#[from] crate::shard::merge::MergeError),
}

/// How each strategy of a sweep is run.
#[derive(Debug, Clone, Default)]
pub enum Execution {
    /// In this process; the server under test is a child re-executing `server_exe` (`None`: this
    /// executable) unless the scenario has a `--target`.
    #[default]
    InProcess,
    /// As K worker processes of this executable, merged (`--workers K`). Their folders go to
    /// `OUT/workers/LABEL/`, or to the sweep's own folder when it runs one strategy.
    Workers(u32),
    /// As one shard of a sharded run (`run --shard I/N`): the folder also gets `shard.json`.
    Shard {
        run: crate::shard::ShardRun,
        source_ip: Option<std::net::IpAddr>,
    },
}

/// Runs `sweep` as `how` says; `cancel` (Ctrl-C, see [`stop_on_ctrl_c`]) stops it with what was
/// measured. The folder is complete whenever this returns `Ok`.
pub async fn run(
    sweep: &Sweep,
    how: &Execution,
    server_exe: Option<PathBuf>,
    cancel: CancellationToken,
) -> Result<SweepOutcome, SweepError> {
    sweep.validate()?;
    for spec in &sweep.strategies {
        crate::driver::preflight(&sweep.scenario, spec).await?;
    }
    match how {
        Execution::InProcess => run_sweep(sweep, cancel, server_exe).await,
        Execution::Workers(k) => {
            crate::shard::check_clients(*k, sweep.scenario.clients.get())?;
            let exe = std::env::current_exe().map_err(SweepError::CurrentExe)?;
            let one = sweep.strategies.len() == 1;
            // A sweep of one strategy is the merge's own folder (`run --workers`): the merge is
            // written there again after the sweep's own write, so it keeps its `merged` record.
            let last_merge = std::sync::Mutex::new(None);
            let runner = async |spec: &StrategySpec, hooks: &RunHooks| {
                let out = if one {
                    sweep.out.clone()
                } else {
                    sweep.out.join("workers").join(spec.label())
                };
                let plan = crate::shard::workers::WorkersPlan::new(
                    *k,
                    spec,
                    &sweep.scenario,
                    out,
                    exe.clone(),
                );
                let done = crate::shard::workers::run(&plan, hooks.cancel.clone()).await?;
                for (index, what) in &done.failures {
                    tracing::warn!("shard {index}/{k} of {} exited with {what}", spec.label());
                }
                eprint!("{}", crate::shard::merge::shards_section(&done.merged.info));
                let run = done.merged.results.runs.first().cloned();
                if let Ok(mut last) = last_merge.lock() {
                    *last = Some(done.merged);
                }
                run.ok_or(crate::shard::workers::WorkersError::Empty)
            };
            let outcome = sweep_with(sweep, header(sweep), runner, cancel, None).await?;
            let merged = last_merge.into_inner().ok().flatten();
            if let Some(merged) = merged.filter(|_| one) {
                crate::shard::merge::write(&merged, &sweep.out)?;
            }
            Ok(outcome)
        }
        Execution::Shard { run, source_ip } => {
            crate::shard::check_clients(run.plan.spec.count, sweep.scenario.clients.get())?;
            let runner = async |spec: &StrategySpec, hooks: &RunHooks| {
                let hooks = RunHooks {
                    shard: Some(run.clone()),
                    source_ip: *source_ip,
                    ..hooks.clone()
                };
                crate::driver::run_strategy(&sweep.scenario, spec, &hooks).await
            };
            let outcome = sweep_with(sweep, header(sweep), runner, cancel, server_exe).await?;
            if let Some(tallies) = run.take_tallies() {
                let record = crate::shard::record::ShardRecord::new(
                    &run.plan,
                    run.anchor.facts.clone(),
                    tallies,
                );
                record.save(&sweep.out)?;
            }
            Ok(outcome)
        }
    }
}

/// A sweep's results before its first run.
fn header(sweep: &Sweep) -> Results {
    Results {
        schema_version: SCHEMA_VERSION,
        tool: crate::driver::tool_info(),
        machine: crate::driver::machine_info(),
        scenario: sweep.scenario.clone(),
        started_unix: unix_now(),
        runs: Vec::new(),
    }
}

/// One sweep: what to run and where to write.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub scenario: Scenario,
    pub strategies: Vec<StrategySpec>,
    pub out: PathBuf,
}

/// How a sweep ended (the folder is complete in every case).
#[derive(Debug)]
pub struct SweepOutcome {
    pub out: PathBuf,
    pub results: Results,
    /// Strategies the sweep was asked to run.
    pub planned: usize,
    /// Labels of runs that failed to start or whose server died.
    pub failed: Vec<String>,
    /// Ctrl-C stopped the sweep; later strategies were not run.
    pub interrupted: bool,
}

impl SweepOutcome {
    /// What to print when the sweep ends: where the reports are and what went wrong.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} of {} runs recorded; reports in {} (open report.html, or read summary.md)",
            self.results.runs.len(),
            self.planned,
            self.out.display()
        );
        if self.interrupted {
            text.push_str("\ninterrupted by Ctrl-C: the reports cover the runs measured so far");
        }
        for label in &self.failed {
            text.push_str(&format!("\nrun {label} failed: see summary.md"));
        }
        text
    }

    /// 0 when every run completed, 130 after Ctrl-C (as shells report SIGINT), 1 when a run failed.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if !self.failed.is_empty() {
            1
        } else {
            0
        }
    }
}

impl Sweep {
    /// Refuses an empty or ambiguous strategy list before anything is started.
    pub fn validate(&self) -> Result<(), SweepError> {
        if self.strategies.is_empty() {
            return Err(SweepError::NoStrategies);
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.strategies {
            if !seen.insert(s.label()) {
                return Err(SweepError::DuplicateStrategy(s.label()));
            }
        }
        Ok(())
    }
}

/// Where `compare` writes when `--out` is not given: `reports/compare-<unix seconds>`.
/// Seconds since the Unix epoch (a folder name's time stamp, `started_unix`).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the sweep with the real driver: a child server per run unless the scenario has a target.
async fn run_sweep(
    sweep: &Sweep,
    cancel: CancellationToken,
    server_exe: Option<PathBuf>,
) -> Result<SweepOutcome, SweepError> {
    let runner = async |spec: &StrategySpec, hooks: &RunHooks| {
        crate::driver::run_strategy(&sweep.scenario, spec, hooks).await
    };
    sweep_with(sweep, header(sweep), runner, cancel, server_exe).await
}

/// The sweep loop, over any runner (tests pass a fake one): run, record, rewrite every report.
/// The sweep was checked by [`run`] (`Sweep::validate`, every strategy's preflight).
pub(crate) async fn sweep_with<E: std::fmt::Display>(
    sweep: &Sweep,
    mut results: Results,
    runner: impl AsyncFn(&StrategySpec, &RunHooks) -> Result<RunResult, E>,
    cancel: CancellationToken,
    server_exe: Option<PathBuf>,
) -> Result<SweepOutcome, SweepError> {
    // Writing the empty folder first fails fast on an unwritable --out.
    report::write_all(&results, &sweep.out)?;
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let planned = sweep.strategies.len();
    // A sweep of one (`loadgen run`, a capacity step) shows its run's bar alone and says nothing
    // more: its caller prints the run's summary.
    let overall = if planned > 1 {
        bars.add(sweep_bar(planned))
    } else {
        ProgressBar::hidden()
    };
    // Keeps the elapsed time and estimate moving while a run is in progress.
    overall.enable_steady_tick(std::time::Duration::from_secs(1));
    let mut failed = Vec::new();
    // Without a terminal the bars are hidden: one plain line per run start and end instead.
    let say = |line: String| {
        if planned == 1 {
            return;
        }
        if bars.is_hidden() {
            eprintln!("{line}");
        } else {
            overall.println(line);
        }
    };
    for (k, spec) in sweep.strategies.iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        let label = spec.label();
        let step = format!("[{}/{planned}] {label}", k + 1);
        if bars.is_hidden() && planned > 1 {
            say(format!("{step}: running"));
        }
        overall.set_message(label.clone());
        let hooks = RunHooks {
            progress: Some(bars.add(crate::progress::default_bar(&label))),
            cancel: cancel.clone(),
            server_exe: server_exe.clone(),
            ..RunHooks::default()
        };
        let run = match runner(spec, &hooks).await {
            Ok(run) => run,
            Err(e) => failed_run(spec, &sweep.scenario, e.to_string()),
        };
        if matches!(
            run.outcome,
            Outcome::Failed { .. } | Outcome::ServerDied { .. }
        ) {
            failed.push(label.clone());
        }
        say(format!("{step}: {}", run.outcome));
        results.runs.push(run);
        hold_lag_to_the_fastest(&mut results.runs);
        report::write_all(&results, &sweep.out)?;
        overall.inc(1);
    }
    overall.finish_and_clear();
    Ok(SweepOutcome {
        out: sweep.out.clone(),
        interrupted: cancel.is_cancelled(),
        planned: sweep.strategies.len(),
        failed,
        results,
    })
}

fn sweep_bar(runs: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(runs as u64), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template(
            "sweep [{bar:24.cyan/blue}] {pos}/{len} runs, {elapsed_precise} elapsed, ~{eta} left: {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// In a sweep, the generator's own lag must be small against the *fastest* latency measured
/// (usually push's p50), not only against each run's own: a 1 ms send lag is nothing beside
/// poll@5s but a fifth of a 5 ms push latency, and every "N× slower than push" ratio carries it.
/// Re-judges every run's generator warnings against the fastest completed run's p50.
fn hold_lag_to_the_fastest(runs: &mut [RunResult]) {
    let fastest = runs
        .iter()
        .filter(|r| r.outcome == Outcome::Completed && r.latency.corrected.count > 0)
        .map(|r| r.latency.corrected.p50_us)
        .min();
    let Some(fastest) = fastest else {
        return;
    };
    for run in runs.iter_mut() {
        let judged = crate::summary::generator_warnings(
            &run.generator_error,
            &run.schedule,
            fastest,
            run.latency.corrected.p50_us,
        );
        for w in judged {
            let same_source = |old: &Warning| match (old, &w) {
                (
                    Warning::GeneratorLag { source: a, .. },
                    Warning::GeneratorLag { source: b, .. },
                ) => a == b,
                (old, new) => old == new,
            };
            if !run.warnings.iter().any(same_source) {
                run.saturated |= w.is_saturation();
                run.warnings.push(w);
            }
        }
    }
}

/// A run that could not start still gets a row, so the report says what happened to it.
pub(crate) fn failed_run(spec: &StrategySpec, scenario: &Scenario, detail: String) -> RunResult {
    RunResult {
        label: spec.label(),
        strategy: spec.clone(),
        target: scenario
            .target
            .clone()
            .unwrap_or_else(|| "spawned".to_string()),
        outcome: Outcome::Failed { detail },
        timings: Default::default(),
        clients: Default::default(),
        latency: Default::default(),
        delivery: Default::default(),
        traffic: Default::default(),
        schedule: Default::default(),
        resources: Default::default(),
        generator_error: Default::default(),
        polls: None,
        outages: Default::default(),
        nodes: None,
        saturated: false,
        warnings: Vec::new(),
    }
}

/// Cancels `cancel` on the first Ctrl-C (the sweep then writes what it has and stops); a second
/// Ctrl-C exits at once. The handler is installed before this returns (not when a task first
/// runs), so no Ctrl-C after the call is lost to the default handler.
/// The generator's one Ctrl-C policy: the first Ctrl-C cancels `cancel` (the current run stops
/// and its report, with everything measured so far, is written); a second one quits at once.
#[cfg(unix)]
pub fn stop_on_ctrl_c(cancel: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupts = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        if interrupts.recv().await.is_none() {
            return;
        }
        eprintln!("\nCtrl-C: finishing the current run's report; press Ctrl-C again to quit now");
        cancel.cancel();
        if interrupts.recv().await.is_some() {
            std::process::exit(130);
        }
    });
    Ok(())
}

/// Cancels `cancel` on the first Ctrl-C; a second Ctrl-C exits at once.
#[cfg(not(unix))]
pub fn stop_on_ctrl_c(cancel: CancellationToken) -> std::io::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("\nCtrl-C: finishing the current run's report; press Ctrl-C again to quit now");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Machine, ToolInfo};
    use std::path::Path;

    fn header(scenario: &Scenario) -> Results {
        Results {
            schema_version: SCHEMA_VERSION,
            tool: ToolInfo {
                name: "loadgen".into(),
                version: "test".into(),
                git_commit: None,
            },
            machine: Machine {
                cores: 1,
                memory_bytes: None,
                os: "test".into(),
                kernel: None,
                cpu_model: None,
            },
            scenario: scenario.clone(),
            started_unix: 0,
            runs: Vec::new(),
        }
    }

    fn sweep(dir: &Path, specs: &str) -> Sweep {
        Sweep {
            scenario: crate::cli::default_scenario(),
            strategies: specs.split(',').map(|s| s.parse().expect("spec")).collect(),
            out: dir.to_path_buf(),
        }
    }

    fn completed(spec: &StrategySpec) -> RunResult {
        RunResult {
            outcome: Outcome::Completed,
            ..failed_run(spec, &crate::cli::default_scenario(), String::new())
        }
    }

    fn runs_on_disk(dir: &Path) -> usize {
        Results::load(dir).map_or(0, |r| r.runs.len())
    }

    #[tokio::test]
    async fn rewrites_results_after_every_run_and_records_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sweep = sweep(dir.path(), "poll@1s,sse,socketio");
        let seen = std::cell::RefCell::new(Vec::new());
        let runner = async |spec: &StrategySpec, _: &RunHooks| {
            // What is on disk when run k starts: the k−1 runs before it.
            seen.borrow_mut().push(runs_on_disk(dir.path()));
            if spec.label() == "sse" {
                Err("server did not start")
            } else {
                Ok(completed(spec))
            }
        };
        let cancel = CancellationToken::new();
        let out = sweep_with(&sweep, header(&sweep.scenario), runner, cancel, None)
            .await
            .expect("sweep");
        assert_eq!(*seen.borrow(), vec![0, 1, 2]);
        assert_eq!(out.failed, vec!["sse".to_string()]);
        assert_eq!(out.exit_code(), 1);
        let saved = Results::load(dir.path()).expect("saved");
        assert_eq!(saved.runs.len(), 3);
        assert!(matches!(
            &saved.runs[1].outcome,
            Outcome::Failed { detail } if detail == "server did not start"
        ));
        assert!(dir.path().join("report.html").is_file());
        assert!(dir.path().join("socketio.hgrm").is_file());
    }

    #[tokio::test]
    async fn ctrl_c_stops_the_sweep_with_what_was_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sweep = sweep(dir.path(), "poll@1s,sse,socketio");
        let runner = async |spec: &StrategySpec, hooks: &RunHooks| {
            let mut run = completed(spec);
            if spec.label() == "sse" {
                // Ctrl-C arrives during the second run, which returns its partial numbers.
                hooks.cancel.cancel();
                run.outcome = Outcome::Interrupted;
            }
            Ok::<_, String>(run)
        };
        let out = sweep_with(
            &sweep,
            header(&sweep.scenario),
            runner,
            CancellationToken::new(),
            None,
        )
        .await
        .expect("sweep");
        assert!(out.interrupted);
        assert_eq!(out.exit_code(), 130);
        let saved = Results::load(dir.path()).expect("saved");
        let labels: Vec<_> = saved.runs.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["poll@1s", "sse"]);
        assert!(out.summary().contains("2 of 3 runs recorded"));
    }

    #[test]
    fn generator_lag_is_held_to_the_fastest_run_of_the_sweep() {
        let with = |p50_us: u64, send_lag_p99_us: u64| {
            let mut r = completed(&"poll@1s".parse().expect("spec"));
            r.latency.corrected.count = 100;
            r.latency.corrected.p50_us = p50_us;
            r.generator_error.send_lag.count = 100;
            r.generator_error.send_lag.p99_us = send_lag_p99_us;
            r
        };
        // 2 ms of send lag is fine beside a 500 ms poll, not beside a 5 ms push.
        let mut runs = vec![with(500_000, 2_000), with(5_000, 100)];
        hold_lag_to_the_fastest(&mut runs);
        assert!(
            runs[0].warnings.iter().any(|w| matches!(
                w,
                Warning::GeneratorLag {
                    bound_us: 5_000,
                    ..
                }
            )),
            "{:?}",
            runs[0].warnings
        );
        assert!(runs[0].saturated);
        assert!(runs[1].warnings.is_empty(), "{:?}", runs[1].warnings);
        hold_lag_to_the_fastest(&mut runs);
        assert_eq!(runs[0].warnings.len(), 1, "judged once");
    }

    #[test]
    fn refuses_empty_and_duplicate_strategy_lists() {
        let dir = Path::new("unused");
        let mut s = sweep(dir, "poll@1s,sse,poll@1s");
        assert!(matches!(
            s.validate(),
            Err(SweepError::DuplicateStrategy(l)) if l == "poll@1s"
        ));
        s.strategies.clear();
        assert!(matches!(s.validate(), Err(SweepError::NoStrategies)));
    }
}
