//! `chat-server`: parse flags, bind, announce the address, serve until SIGINT/SIGTERM.

use anyhow::Context;
use chat_server::Config;
use clap::Parser;

/// One chat served four ways: REST, cursor and long polling, SSE and Socket.IO.
#[derive(Parser)]
#[command(name = "chat-server", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

fn main() -> anyhow::Result<()> {
    let config = Cli::parse().config;
    chat_server::process::init_logging();
    let runtime = chat_server::process::runtime(config.threads, "chat-server")
        .context("starting the async runtime")?;
    runtime.block_on(chat_server::process::serve(config, std::future::pending()))?;
    Ok(())
}
