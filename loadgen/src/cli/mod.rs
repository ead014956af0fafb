//! The command line: the flags of every command, checked and turned into the engine's inputs.
//! `run` ([`run`]), `compare` ([`compare`]) and `capacity` ([`capacity`]) all go through one
//! sweep ([`crate::sweep`]); [`scenario_args`] is where flags become a validated scenario. The
//! hidden `serve-chat` is the chat server process the generator re-executes itself as.

pub mod capacity;
pub mod compare;
pub mod run;
pub mod scenario_args;

use clap::{Args, Parser, Subcommand};
use tokio::io::AsyncReadExt;

pub use capacity::CapacityArgs;
pub use compare::CompareArgs;
pub use run::{RunArgs, exit_code, render_summary};
pub use scenario_args::{ScenarioArgs, ScenarioError, default_scenario};

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
    Compare(CompareArgs),
    /// Re-render the reports of result folders from their results.json (no re-run); several
    /// folders are merged side by side.
    Report(crate::report::command::ReportArgs),
    /// Find the largest client count the server holds for one strategy: doubling from
    /// --clients until a step breaks (p99 above --p99, any loss, or the generator's own health),
    /// then bisecting. Writes one run folder per step, capacity.json and capacity.md.
    Capacity(CapacityArgs),
    /// Merge the results folders of the shards of one run (`run --shard I/N`) into one exact
    /// result: histograms added, counters summed, loss against every shard's receivers.
    Merge(crate::shard::merge::MergeArgs),
    /// Target profiles: `profile check FILE --target URL` tries one message through every door.
    Profile {
        #[command(subcommand)]
        command: crate::profile_check::ProfileCommand,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeChatArgs {
    #[command(flatten)]
    pub config: chat_server::Config,
}

/// `loadgen serve-chat`: the chat server process exactly as `chat-server` runs it
/// ([`chat_server::process::serve`]), which also stops when standard input closes (the parent's
/// lifeline: if the generator dies, its child does not linger).
pub async fn serve_chat(args: ServeChatArgs) -> Result<(), chat_server::process::ProcessError> {
    chat_server::process::serve(args.config, stdin_closed()).await
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
