//! `loadgen`: parse the command line, run it, print the outcome, set the exit code.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use loadgen::cli::{self, Cli, Command};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG`. `serve-chat` logs exactly as `chat-server` does, so a
/// child server's stderr tail in a report holds its log; the generator's own commands say only
/// what went wrong (warn), beside their progress bar.
fn init_logging(command: &Command) {
    if let Command::ServeChat(_) = command {
        chat_server::process::init_logging();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    // The child server runs as `chat-server` does, on its own runtime (`--threads`).
    if let Command::ServeChat(args) = cli.command {
        let runtime = chat_server::process::runtime(args.config.threads, "chat-server")
            .context("starting the async runtime")?;
        runtime.block_on(cli::serve_chat(args))?;
        return Ok(0);
    }
    let worker = std::sync::atomic::AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        // Numbered, so per-thread CPU and loop lag in the results tell the workers apart (at most
        // 15 bytes: Linux keeps no more of a thread name).
        .thread_name_fn(move || {
            let n = worker.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("loadgen-wrk-{n}")
        })
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // One Ctrl-C policy for every command that measures (see `sweep::stop_on_ctrl_c`).
        let cancel = CancellationToken::new();
        if matches!(
            cli.command,
            Command::Run(_) | Command::Compare(_) | Command::Capacity(_)
        ) {
            loadgen::sweep::stop_on_ctrl_c(cancel.clone())
                .context("installing the Ctrl-C handler")?;
        }
        match cli.command {
            Command::Run(args) => {
                let report = cli::run::run(&args, cancel).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&report.result)?);
                } else {
                    print!("{}", cli::render_summary(&report.result, &report.saved));
                }
                Ok(cli::exit_code(&report.result.outcome))
            }
            Command::ServeChat(_) => unreachable!("served above, on its own runtime"),
            Command::Compare(args) => match args.capacity {
                Some(p99) => {
                    let found = cli::capacity::compare_capacity(&args, p99, cancel).await?;
                    for c in &found {
                        println!("{}", c.summary());
                    }
                    let all_held = found.iter().all(|c| c.largest_held.is_some());
                    Ok(if all_held { 0 } else { 1 })
                }
                None => {
                    let sweep = cli::compare::compare(&args, cancel).await?;
                    println!("{}", sweep.summary());
                    Ok(sweep.exit_code())
                }
            },
            Command::Capacity(args) => {
                let (capacity, out) = cli::capacity::capacity(&args, cancel).await?;
                println!("{}", capacity.summary());
                println!("steps and verdict in {}", out.display());
                Ok(if capacity.largest_held.is_some() {
                    0
                } else {
                    1
                })
            }
            Command::Merge(args) => {
                let (merged, saved) = loadgen::shard::merge::run(&args)?;
                let result = &merged.results.runs[0];
                print!("{}", cli::render_summary(result, &saved));
                print!("{}", loadgen::shard::merge::shards_section(&merged.info));
                if merged.is_whole() {
                    Ok(cli::exit_code(&result.outcome))
                } else {
                    eprintln!(
                        "WARNING: this merge is not the whole run (shards missing, unreadable or failed): see above"
                    );
                    Ok(1)
                }
            }
            Command::Report(args) => {
                let (out, written) = loadgen::report::command::run(&args)?;
                println!("wrote {} files to {}", written.len(), out.display());
                Ok(0)
            }
            Command::Profile {
                command: loadgen::profile_check::ProfileCommand::Check(args),
            } => {
                let reports = loadgen::profile_check::run(&args).await?;
                println!("profile {} against {}", args.file, args.target);
                for r in &reports {
                    println!("{r}");
                }
                Ok(u8::from(reports.iter().any(|r| r.verdict.is_err())))
            }
        }
    })
}
