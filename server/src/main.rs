//! `chat-server`: parse flags, bind, announce the address, serve until SIGINT/SIGTERM.

use chat_server::Config;
use clap::Parser;

/// One chat served four ways: REST, cursor and long polling, SSE and Socket.IO.
#[derive(Parser)]
#[command(name = "chat-server", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Cli::parse().config;
    chat_server::process::init_logging();
    chat_server::process::serve(config, std::future::pending()).await?;
    Ok(())
}
