//! `loadgen capacity` and `loadgen compare --capacity`: the flags, checked, handed to the search
//! ([`crate::capacity`]).

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::compare::{CompareArgs, CompareError};
use super::scenario_args::{ScenarioArgs, ScenarioError};
use crate::capacity::{Capacity, CapacityError, Search};
use crate::scenario::{StrategySpec, parse_duration};

/// Find the largest client count a server holds for one strategy.
///
/// `--clients` is where the search starts; it doubles from there until a run breaks, then
/// bisects. Every other scenario flag applies to every step.
#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("clients", |a| a.default_value("100").help("Client count of the first step (doubled until a step breaks)")),
    mut_arg("duration", |a| a.default_value("15s")),
    mut_arg("warmup", |a| a.default_value("3s")),
    mut_arg("drain", |a| a.default_value("5s"))
)]
pub struct CapacityArgs {
    /// The strategy whose capacity is searched.
    #[arg(long, default_value = "socketio")]
    pub strategy: StrategySpec,
    /// Latency target: a step holds only if its p99 (from the intended send time) is within it.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub p99: Duration,
    /// The largest client count to try (a server that holds it is reported as holding at least
    /// that many).
    #[arg(long, default_value = "16000")]
    pub max_clients: NonZeroUsize,
    /// Bisection stops when the bracket is narrower than this share of the count that held.
    #[arg(long, default_value_t = 0.05)]
    pub resolution: f64,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Output folder [default: reports/capacity-LABEL-<unix time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Why a capacity command could not run.
#[derive(Debug, thiserror::Error)]
pub enum CapacityCommandError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Compare(#[from] CompareError),
    #[error(transparent)]
    Search(#[from] CapacityError),
}

/// `loadgen capacity`: checks the flags, searches (`cancel` stops it, keeping what was measured),
/// writes the folder, and returns the verdict and the folder.
pub async fn capacity(
    args: &CapacityArgs,
    cancel: CancellationToken,
) -> Result<(Capacity, PathBuf), CapacityCommandError> {
    let scenario = args.scenario.to_scenario()?;
    let search = Search {
        strategy: args.strategy.clone(),
        p99: args.p99,
        start: args.scenario.clients.get(),
        max: args.max_clients.get(),
        resolution: args.resolution,
    };
    crate::capacity::validate(&search)?;
    let out = args.out.clone().unwrap_or_else(|| {
        Path::new("reports").join(format!(
            "capacity-{}-{}",
            search.strategy.label().replace('@', "-"),
            crate::sweep::unix_now()
        ))
    });
    eprintln!(
        "capacity: {} from {} clients, p99 ≤ {} ms; steps in {} (Ctrl-C stops and keeps what was measured)",
        search.strategy.label(),
        search.start,
        search.p99.as_secs_f64() * 1000.0,
        out.display()
    );
    let found = crate::capacity::run_search(&search, &scenario, &out, cancel, None).await?;
    Ok((found, out))
}

/// `loadgen compare --capacity P99`: one search per strategy of the sweep.
pub async fn compare_capacity(
    args: &CompareArgs,
    p99: Duration,
    cancel: CancellationToken,
) -> Result<Vec<Capacity>, CapacityCommandError> {
    let sweep = args.to_sweep()?;
    eprintln!(
        "compare --capacity: {} strategies, p99 ≤ {} ms each; reports in {} (Ctrl-C stops and keeps what was measured)",
        sweep.strategies.len(),
        p99.as_secs_f64() * 1000.0,
        sweep.out.display()
    );
    Ok(crate::capacity::sweep(&sweep, p99, args.max_clients.get(), cancel).await?)
}
