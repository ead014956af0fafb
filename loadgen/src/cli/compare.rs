//! `loadgen compare`: several strategies under one scenario, as one sweep ([`crate::sweep`]).

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::scenario_args::{ScenarioArgs, ScenarioError};
use crate::scenario::{StrategySpec, parse_duration};
use crate::sweep::{DEFAULT_STRATEGIES, Execution, Sweep, SweepError, SweepOutcome, unix_now};

/// Run several strategies under one scenario and write the full report folder.
///
/// Defaults (the main job; a few minutes on a laptop): --clients 500 --rate 10 --duration 20s
/// --warmup 3s --strategies poll@100ms,poll@500ms,poll@1s,poll@5s,longpoll,sse,socketio,socketio-polling
/// --out reports/compare-<unix time>.
#[derive(Debug, Clone, clap::Args)]
#[command(
    mut_arg("clients", |a| a.default_value("500")),
    mut_arg("duration", |a| a.default_value("20s")),
    mut_arg("warmup", |a| a.default_value("3s"))
)]
pub struct CompareArgs {
    /// Comma-separated strategies, run in this order, each against a fresh server.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_STRATEGIES)]
    pub strategies: Vec<StrategySpec>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Report folder (results.json, summary.md, summary.csv, *.hgrm, report.html)
    /// [default: reports/compare-<unix time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Instead of one run per strategy, search each strategy's capacity at this p99 target
    /// (as `loadgen capacity` does, from --clients up): writes OUT/capacity.md with one row per
    /// strategy and OUT/LABEL/ with each search's steps.
    #[arg(long, value_name = "P99", value_parser = parse_duration)]
    pub capacity: Option<std::time::Duration>,
    /// With --capacity: the largest client count to try.
    #[arg(long, default_value = "16000", requires = "capacity")]
    pub max_clients: std::num::NonZeroUsize,
    /// Run each strategy as K shard processes (as `run --workers K`), merged; their folders go
    /// to OUT/workers/LABEL/.
    #[arg(long, conflicts_with = "capacity")]
    pub workers: Option<std::num::NonZeroU32>,
}

impl CompareArgs {
    /// The sweep these flags ask for, checked (see [`Sweep::validate`]).
    pub fn to_sweep(&self) -> Result<Sweep, CompareError> {
        let sweep = Sweep {
            scenario: self.scenario.to_scenario()?,
            strategies: self.strategies.clone(),
            out: self
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("reports/compare-{}", unix_now()))),
        };
        sweep.validate()?;
        Ok(sweep)
    }

    /// How each strategy runs: in this process, or as `--workers` K merged shards.
    pub fn execution(&self) -> Execution {
        self.workers
            .map_or(Execution::InProcess, |k| Execution::Workers(k.get()))
    }
}

/// Why `loadgen compare` could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Sweep(#[from] SweepError),
}

/// `loadgen compare`: checks everything, then runs the sweep (`cancel` stops it with what was
/// measured); the report folder is complete whenever this returns `Ok`.
pub async fn compare(
    args: &CompareArgs,
    cancel: CancellationToken,
) -> Result<SweepOutcome, CompareError> {
    let sweep = args.to_sweep()?;
    eprintln!(
        "compare: {} strategies, one after another; reports in {} (Ctrl-C stops and keeps what was measured)",
        sweep.strategies.len(),
        sweep.out.display()
    );
    Ok(crate::sweep::run(&sweep, &args.execution(), None, cancel).await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_defaults_are_the_main_job() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["loadgen", "compare"]).expect("parses");
        let crate::cli::Command::Compare(args) = cli.command else {
            panic!("not compare");
        };
        let sweep = args.to_sweep().expect("valid");
        assert_eq!(sweep.scenario.clients.get(), 500);
        assert_eq!(sweep.scenario.duration, std::time::Duration::from_secs(20));
        assert_eq!(sweep.scenario.warmup, std::time::Duration::from_secs(3));
        assert_eq!(sweep.strategies.len(), 8);
        assert!(sweep.out.starts_with("reports"));
        let cli = crate::cli::Cli::try_parse_from([
            "loadgen",
            "compare",
            "--strategies",
            "poll@2s,sse",
            "--clients",
            "7",
        ])
        .expect("parses");
        let crate::cli::Command::Compare(args) = cli.command else {
            panic!("not compare");
        };
        let sweep = args.to_sweep().expect("valid");
        assert_eq!(sweep.scenario.clients.get(), 7);
        assert_eq!(sweep.strategies[0].label(), "poll@2s");
        let bad = crate::cli::Cli::try_parse_from(["loadgen", "compare", "--strategies", "pol@1s"]);
        assert!(bad.is_err_and(|e| e.to_string().contains("pol@1s")));
    }
}
