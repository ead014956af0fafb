//! `loadgen capacity`: the largest number of clients a server holds for one strategy, found by
//! measuring. The client count doubles from `--clients` until a run breaks, then the bracket
//! between the last count that held and the first that broke is bisected down to `--resolution`.
//!
//! A run *holds* when it completed, every client connected, every expected message arrived
//! (no failed send), its p99 stayed within `--p99`, and the generator stayed healthy (no
//! warning that the generator or the machine, rather than the server, shaped the figures). It
//! pushes the server to overload on purpose, so it relies on the overload accounting: a failed
//! send is loss, a missing pair a censored sample, an outage a warning.
//!
//! The folder gets one ordinary run folder per step (`steps/LABEL-N/`, renderable with
//! `loadgen report`) and `capacity.json` / `capacity.md` with the search and its verdict.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::results::{Outcome, RunResult, SCHEMA_VERSION, Warning};
use crate::scenario::{Scenario, StrategySpec};
use crate::sweep::{Execution, Sweep, SweepError};

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("--resolution must be between 0 and 1 (a share of the client count), got {0}")]
    Resolution(f64),
    #[error("--clients ({start}) must not exceed --max-clients ({max})")]
    StartAboveMax { start: usize, max: usize },
    #[error("--p99 must be longer than zero")]
    ZeroTarget,
    #[error(transparent)]
    Sweep(#[from] crate::sweep::SweepError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the search is asked to find.
#[derive(Debug, Clone)]
pub struct Search {
    pub strategy: StrategySpec,
    pub p99: Duration,
    pub start: usize,
    pub max: usize,
    pub resolution: f64,
}

/// Why a step did not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Broke {
    /// The run did not complete (the server died, the run failed or was interrupted).
    Outcome {
        detail: String,
    },
    ClientsFailed {
        failed: u64,
        planned: u64,
    },
    /// Messages were lost (missing pairs, failed sends included).
    Loss {
        missing: u64,
        expected: u64,
    },
    P99 {
        p99_us: u64,
        target_us: u64,
    },
    /// The generator (or the machine it shares with the server) shaped the figures: the
    /// server's capacity cannot be told from this run.
    GeneratorHealth {
        warning: String,
    },
}

impl fmt::Display for Broke {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broke::Outcome { detail } => write!(f, "the run did not complete: {detail}"),
            Broke::ClientsFailed { failed, planned } => {
                write!(f, "{failed} of {planned} clients could not connect")
            }
            Broke::Loss { missing, expected } => {
                write!(f, "{missing} of {expected} expected deliveries were lost")
            }
            Broke::P99 { p99_us, target_us } => write!(
                f,
                "p99 {:.1} ms is above the target {:.1} ms",
                *p99_us as f64 / 1000.0,
                *target_us as f64 / 1000.0
            ),
            Broke::GeneratorHealth { warning } => {
                write!(f, "the generator's own health broke: {warning}")
            }
        }
    }
}

/// Whether one run held, and if not, the first reason (in the order of [`Broke`]).
pub fn verdict(run: &RunResult, target: Duration) -> Result<(), Broke> {
    if run.outcome != Outcome::Completed {
        return Err(Broke::Outcome {
            detail: run.outcome.to_string(),
        });
    }
    if run.clients.failed > 0 {
        return Err(Broke::ClientsFailed {
            failed: run.clients.failed,
            planned: run.clients.planned,
        });
    }
    let d = &run.delivery;
    if d.missing > 0 || d.probes_failed > 0 || d.probes_unanswered > 0 {
        return Err(Broke::Loss {
            missing: d.missing,
            expected: d.expected,
        });
    }
    let target_us = u64::try_from(target.as_micros()).unwrap_or(u64::MAX);
    let p99_us = run.latency.corrected.p99_us;
    if p99_us > target_us {
        return Err(Broke::P99 { p99_us, target_us });
    }
    // The saturation warnings are exactly those that say the generator (or the machine it
    // shares with the server), not the server, shaped the figures. Those about the generator's
    // own delay are judged against what this verdict compares: latencies are taken from the
    // intended instant, so the delay is inside them, and it can only have changed the verdict
    // once it is a visible share (a tenth) of the p99 target. Beside a 100 ms target, 0.2 ms of
    // send lag is not a reason to stop, though it is beside a 1.5 ms p50 in a comparison table.
    let small = |lag_us: u64| lag_us <= target_us / 10;
    let send_lag_us = run.generator_error.send_lag.p99_us;
    let shaped_the_verdict = |w: &Warning| match w {
        Warning::GeneratorLag { p99_us, .. } | Warning::LatePolls { p99_us, .. } => !small(*p99_us),
        Warning::LateSends { .. } => !small(send_lag_us),
        other => other.is_saturation(),
    };
    if let Some(w) = run.warnings.iter().find(|w| shaped_the_verdict(w)) {
        return Err(Broke::GeneratorHealth {
            warning: w.to_string(),
        });
    }
    Ok(())
}

/// One measured step of the search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub clients: usize,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broke: Option<Broke>,
    pub p99_us: u64,
    pub p50_us: u64,
    pub missing: u64,
    /// The step's run folder, relative to the capacity folder.
    pub folder: String,
}

impl Step {
    /// A step that did not run; `why` says what stopped it.
    fn not_run(clients: usize, why: String) -> Step {
        Step {
            clients,
            held: false,
            broke: Some(Broke::Outcome { detail: why }),
            p99_us: 0,
            p50_us: 0,
            missing: 0,
            folder: String::new(),
        }
    }
}

/// The search's verdict: `capacity.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capacity {
    pub schema_version: u32,
    pub strategy: StrategySpec,
    pub target: String,
    pub p99_target_us: u64,
    /// The largest client count that held (`None`: not even the smallest tried).
    pub largest_held: Option<usize>,
    /// The smallest count that broke above `largest_held`, and why (`None`: `max` held).
    pub broke_at: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broke_because: Option<Broke>,
    /// The search reached `--max-clients` with every step holding.
    pub reached_max: bool,
    pub interrupted: bool,
    pub steps: Vec<Step>,
}

impl Capacity {
    /// One paragraph for a person.
    pub fn summary(&self) -> String {
        let label = self.strategy.label();
        let target = self.p99_target_us as f64 / 1000.0;
        let mut text = match (self.largest_held, self.broke_at, &self.broke_because) {
            (Some(n), _, _) if self.reached_max => format!(
                "{label}: held every step up to --max-clients {n} (p99 ≤ {target} ms, no loss): the capacity is at least {n}"
            ),
            (Some(n), Some(b), Some(why)) => format!(
                "{label}: capacity {n} clients at p99 ≤ {target} ms with no loss; {b} clients broke it: {why}"
            ),
            (None, Some(b), Some(why)) => {
                format!("{label}: even {b} clients broke it: {why}; no client count held")
            }
            _ => format!("{label}: no step completed"),
        };
        if self.interrupted {
            text.push_str(" (interrupted: the search stopped early)");
        }
        text
    }
}

/// The search itself, over any runner (tests pass a fake one): doubling from `start` while
/// steps hold, halving from `start` while they break, then bisecting the bracket.
pub async fn search<F>(s: &Search, cancel: &CancellationToken, mut step: F) -> Capacity
where
    F: AsyncFnMut(usize) -> Step,
{
    let mut steps: Vec<Step> = Vec::new();
    let mut held: Option<usize> = None;
    let mut broke: Option<(usize, Option<Broke>)> = None;
    let mut next = Some(s.start.clamp(1, s.max));
    while let Some(n) = next {
        if cancel.is_cancelled() {
            break;
        }
        let result = step(n).await;
        let ok = result.held;
        if ok {
            held = held.max(Some(n));
        } else if broke.as_ref().is_none_or(|(b, _)| n < *b) {
            broke = Some((n, result.broke.clone()));
        }
        steps.push(result);
        next = next_count(s, held, broke.as_ref().map(|(b, _)| *b));
    }
    let reached_max = held == Some(s.max);
    let (broke_at, broke_because) = match broke {
        Some((n, why)) => (Some(n), why),
        None => (None, None),
    };
    Capacity {
        schema_version: SCHEMA_VERSION,
        strategy: s.strategy.clone(),
        target: String::new(),
        p99_target_us: u64::try_from(s.p99.as_micros()).unwrap_or(u64::MAX),
        largest_held: held,
        broke_at,
        broke_because,
        reached_max,
        interrupted: cancel.is_cancelled(),
        steps,
    }
}

/// The next client count to try, or `None` when the answer is known to `resolution`.
fn next_count(s: &Search, held: Option<usize>, broke: Option<usize>) -> Option<usize> {
    match (held, broke) {
        // Still climbing: double, up to the maximum.
        (Some(h), None) if h < s.max => Some((h * 2).min(s.max)),
        (Some(_), None) => None,
        // Nothing held yet: halve, down to one client.
        (None, Some(1)) => None,
        (None, Some(b)) => Some((b / 2).max(1)),
        (Some(h), Some(b)) => {
            let width = b.saturating_sub(h);
            let enough = ((h as f64 * s.resolution).ceil() as usize).max(1);
            (width > enough).then(|| h + width / 2)
        }
        (None, None) => Some(s.start.clamp(1, s.max)),
    }
}

pub fn validate(s: &Search) -> Result<(), CapacityError> {
    if !(s.resolution > 0.0 && s.resolution < 1.0) {
        return Err(CapacityError::Resolution(s.resolution));
    }
    if s.start > s.max {
        return Err(CapacityError::StartAboveMax {
            start: s.start,
            max: s.max,
        });
    }
    if s.p99.is_zero() {
        return Err(CapacityError::ZeroTarget);
    }
    Ok(())
}

/// The search with the real driver; each step's run folder is written as soon as it ends.
pub async fn run_search(
    search: &Search,
    scenario: &Scenario,
    out: &Path,
    cancel: CancellationToken,
    server_exe: Option<PathBuf>,
) -> Result<Capacity, CapacityError> {
    validate(search)?;
    std::fs::create_dir_all(out).map_err(|source| CapacityError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let mut failure: Option<CapacityError> = None;
    // Cancelled by Ctrl-C (through `cancel`), or by a step whose run could not even start.
    let stop = cancel.child_token();
    let label = search.strategy.label().replace('@', "-");
    let step = async |clients: usize| -> Step {
        let folder = format!("steps/{label}-{clients}");
        // Each step is a sweep of one strategy into its own run folder.
        let sweep = Sweep {
            scenario: Scenario {
                clients: NonZeroUsize::new(clients).unwrap_or(NonZeroUsize::MIN),
                ..scenario.clone()
            },
            strategies: vec![search.strategy.clone()],
            out: out.join(&folder),
        };
        let ran = crate::sweep::run(
            &sweep,
            &Execution::InProcess,
            server_exe.clone(),
            cancel.clone(),
        )
        .await
        .map(|o| o.results.runs.into_iter().next());
        let run = match ran {
            Ok(Some(run)) => run,
            // Stopped before the step started.
            Ok(None) => {
                stop.cancel();
                return Step::not_run(clients, "interrupted before it started".into());
            }
            Err(e) => {
                // Refused before it started (a bad --target, too many clients for the
                // open-file limit) or a folder that cannot be written: no point going on.
                let step = Step::not_run(clients, e.to_string());
                failure.get_or_insert(e.into());
                stop.cancel();
                return step;
            }
        };
        let why = verdict(&run, search.p99).err();
        eprintln!(
            "  {clients} clients: {}",
            why.as_ref()
                .map_or_else(|| "held".to_string(), |w| format!("broke: {w}"))
        );
        Step {
            clients,
            held: why.is_none(),
            broke: why,
            p99_us: run.latency.corrected.p99_us,
            p50_us: run.latency.corrected.p50_us,
            missing: run.delivery.missing,
            folder,
        }
    };
    let mut capacity = self::search(search, &stop, step).await;
    capacity.interrupted = cancel.is_cancelled();
    match failure {
        // A step that could not start after others ran (too many clients for the open-file
        // limit, say) is where the search stopped, and its step says why; a search whose first
        // step could not start (a bad --target) is the user's to fix, and a report that could
        // not be written is always an error.
        Some(e @ CapacityError::Sweep(SweepError::Run(_)))
            if capacity.steps.iter().any(|s| !s.folder.is_empty()) =>
        {
            tracing::debug!("the search stopped at a step that could not start: {e}");
        }
        Some(e) => return Err(e),
        None => {}
    }
    capacity.target = scenario
        .target
        .clone()
        .unwrap_or_else(|| "spawned".to_string());
    write_verdict(&capacity, out)?;
    Ok(capacity)
}

fn write_verdict(c: &Capacity, out: &Path) -> Result<(), CapacityError> {
    let write = |name: &str, bytes: Vec<u8>| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|source| CapacityError::Write { path, source })
    };
    let json = serde_json::to_vec_pretty(c).map_err(|e| CapacityError::Write {
        path: out.join("capacity.json"),
        source: std::io::Error::other(e),
    })?;
    write("capacity.json", json)?;
    write("capacity.md", markdown(c).into_bytes())
}

/// `capacity.md`: the verdict, then every step.
pub fn markdown(c: &Capacity) -> String {
    use std::fmt::Write as _;
    let mut md = format!(
        "# pushpoll capacity: {}\n\n{}\n\n- **target**: {}\n- **p99 target**: {} ms, no loss, a healthy generator\n\n| clients | held | p50 (ms) | p99 (ms) | missing | why it broke | run |\n| ---: | --- | ---: | ---: | ---: | --- | --- |\n",
        c.strategy.label(),
        c.summary(),
        c.target,
        c.p99_target_us as f64 / 1000.0
    );
    for s in &c.steps {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.2} | {} | {} | {} |",
            s.clients,
            if s.held { "yes" } else { "**no**" },
            s.p50_us as f64 / 1000.0,
            s.p99_us as f64 / 1000.0,
            s.missing,
            s.broke
                .as_ref()
                .map_or(String::new(), |b| b.to_string().replace('|', "\\|")),
            s.folder
        );
    }
    md
}

/// `loadgen compare --capacity P99`: one capacity search per strategy of `sweep`, each in
/// `OUT/LABEL/`, and `OUT/capacity.md` with one row per strategy, from `sweep.scenario.clients`
/// up to `max` clients. `cancel` stops it and keeps what was measured.
pub async fn sweep(
    sweep: &Sweep,
    p99: Duration,
    max: usize,
    cancel: CancellationToken,
) -> Result<Vec<Capacity>, CapacityError> {
    let mut found = Vec::new();
    for strategy in &sweep.strategies {
        if cancel.is_cancelled() {
            break;
        }
        let search = Search {
            strategy: strategy.clone(),
            p99,
            start: sweep.scenario.clients.get(),
            max,
            resolution: 0.05,
        };
        let out = sweep.out.join(strategy.label().replace('@', "-"));
        let capacity = run_search(&search, &sweep.scenario, &out, cancel.clone(), None).await?;
        eprintln!("{}", capacity.summary());
        found.push(capacity);
        write_table(&found, &sweep.out)?;
    }
    Ok(found)
}

/// `capacity.md` of a sweep: one row per strategy.
fn write_table(found: &[Capacity], out: &Path) -> Result<(), CapacityError> {
    use std::fmt::Write as _;
    let mut md = String::from(
        "# pushpoll capacity per strategy\n\n| strategy | p99 target (ms) | capacity (clients) | broke at | why |\n| --- | ---: | ---: | ---: | --- |\n",
    );
    for c in found {
        let _ = writeln!(
            md,
            "| {} | {} | {}{} | {} | {} |",
            c.strategy.label(),
            c.p99_target_us as f64 / 1000.0,
            if c.reached_max { "≥" } else { "" },
            c.largest_held.map_or("none".to_string(), |n| n.to_string()),
            c.broke_at.map_or("–".to_string(), |n| n.to_string()),
            c.broke_because
                .as_ref()
                .map_or(String::new(), |b| b.to_string().replace('|', "\\|"))
        );
    }
    let path = out.join("capacity.md");
    std::fs::write(&path, md).map_err(|source| CapacityError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search_for(start: usize, max: usize) -> Search {
        Search {
            strategy: "socketio".parse().expect("spec"),
            p99: Duration::from_millis(100),
            start,
            max,
            resolution: 0.05,
        }
    }

    /// A server that holds exactly `capacity` clients.
    async fn find(start: usize, max: usize, capacity: usize) -> Capacity {
        let cancel = CancellationToken::new();
        search(&search_for(start, max), &cancel, async |n| Step {
            clients: n,
            held: n <= capacity,
            broke: (n > capacity).then_some(Broke::P99 {
                p99_us: 200_000,
                target_us: 100_000,
            }),
            p99_us: 0,
            p50_us: 0,
            missing: 0,
            folder: format!("steps/{n}"),
        })
        .await
    }

    fn completed_with(warnings: Vec<Warning>, lag_p99_us: u64) -> RunResult {
        let spec: StrategySpec = "socketio".parse().expect("spec");
        let mut r = crate::sweep::failed_run(&spec, &crate::cli::default_scenario(), String::new());
        r.outcome = Outcome::Completed;
        r.latency.corrected.p99_us = 30_000;
        r.generator_error.send_lag.p99_us = lag_p99_us;
        r.warnings = warnings;
        r
    }

    #[test]
    fn the_generators_lag_breaks_a_step_only_as_a_share_of_the_target() {
        let target = Duration::from_millis(100);
        let lag = |p99_us| Warning::GeneratorLag {
            source: "send lag".into(),
            p99_us,
            bound_us: 150,
        };
        // 0.2 ms of send lag beside a 100 ms target: the step holds.
        assert_eq!(
            verdict(&completed_with(vec![lag(200)], 200), target),
            Ok(())
        );
        // 20 ms of it could have moved the p99 across the target: broken, and said why.
        let broke = verdict(&completed_with(vec![lag(20_000)], 20_000), target);
        assert!(
            matches!(broke, Err(Broke::GeneratorHealth { .. })),
            "{broke:?}"
        );
        // A machine too busy to tell server from generator breaks it whatever the lag.
        let busy = Warning::MachineSaturated {
            generator_percent: 60.0,
            server_percent: 119.0,
            cores: 2,
        };
        assert!(verdict(&completed_with(vec![busy], 0), target).is_err());
    }

    #[tokio::test]
    async fn doubles_then_bisects_to_the_resolution() {
        let c = find(100, 16_000, 437).await;
        let counts: Vec<usize> = c.steps.iter().map(|s| s.clients).collect();
        assert_eq!(&counts[..4], &[100, 200, 400, 800], "{counts:?}");
        let held = c.largest_held.expect("held");
        let broke = c.broke_at.expect("broke");
        assert!(held <= 437 && broke > 437, "{held} {broke}");
        assert!(
            broke - held <= (held as f64 * 0.05).ceil() as usize,
            "{held} {broke}"
        );
        assert!(matches!(c.broke_because, Some(Broke::P99 { .. })));
        assert!(!c.reached_max && !c.interrupted);
        assert!(c.summary().contains(&format!("capacity {held} clients")));
    }

    #[tokio::test]
    async fn a_server_that_holds_everything_is_at_least_the_maximum() {
        let c = find(100, 1_000, usize::MAX).await;
        let counts: Vec<usize> = c.steps.iter().map(|s| s.clients).collect();
        assert_eq!(counts, [100, 200, 400, 800, 1_000]);
        assert_eq!(c.largest_held, Some(1_000));
        assert!(c.reached_max);
        assert!(c.summary().contains("at least 1000"), "{}", c.summary());
    }

    #[tokio::test]
    async fn a_first_step_that_breaks_halves_down() {
        let c = find(100, 1_000, 10).await;
        let counts: Vec<usize> = c.steps.iter().map(|s| s.clients).collect();
        assert_eq!(&counts[..4], &[100, 50, 25, 12], "{counts:?}");
        assert_eq!(c.largest_held, Some(10));
        assert_eq!(c.broke_at, Some(11));
        let none = find(4, 100, 0).await;
        assert_eq!(none.largest_held, None);
        assert_eq!(none.broke_at, Some(1));
        assert!(
            none.summary().contains("no client count held"),
            "{}",
            none.summary()
        );
    }

    #[tokio::test]
    async fn a_sweep_table_has_a_row_per_strategy_with_its_verdict() {
        let a = find(100, 16_000, 437).await;
        let b = find(100, 1_000, usize::MAX).await;
        let dir = tempfile::tempdir().expect("temp dir");
        write_table(&[a.clone(), b], dir.path()).expect("written");
        let md = std::fs::read_to_string(dir.path().join("capacity.md")).expect("read");
        let held = a.largest_held.expect("held");
        assert!(
            md.contains(&format!("| socketio | 100 | {held} | ")),
            "{md}"
        );
        assert!(md.contains("| ≥1000 | – |"), "{md}");
        assert!(
            md.contains("p99 200.0 ms is above the target 100.0 ms"),
            "{md}"
        );
    }

    #[test]
    fn compare_takes_a_capacity_target_and_its_maximum() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from([
            "loadgen",
            "compare",
            "--capacity",
            "50ms",
            "--max-clients",
            "800",
        ])
        .expect("parses");
        let crate::cli::Command::Compare(args) = cli.command else {
            panic!("not compare");
        };
        assert_eq!(args.capacity, Some(Duration::from_millis(50)));
        assert_eq!(args.max_clients.get(), 800);
        // --max-clients means nothing without --capacity.
        assert!(
            crate::cli::Cli::try_parse_from(["loadgen", "compare", "--max-clients", "800"])
                .is_err()
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_flag() {
        let mut s = search_for(100, 50);
        assert!(matches!(
            validate(&s),
            Err(CapacityError::StartAboveMax { .. })
        ));
        s.max = 1_000;
        s.resolution = 1.5;
        assert!(
            validate(&s)
                .unwrap_err()
                .to_string()
                .contains("--resolution")
        );
        s.resolution = 0.05;
        s.p99 = Duration::ZERO;
        assert!(validate(&s).unwrap_err().to_string().contains("--p99"));
    }
}
