//! `chat-server`: parse flags, bind, announce the address, serve until SIGINT/SIGTERM.

use std::io::Write;

use anyhow::Context;
use chat_server::Config;
use clap::Parser;
use tracing_subscriber::EnvFilter;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {} (try another --addr)", config.addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // A bad --redis URL or an unreachable Redis stops the start here, before the address is
    // announced.
    let backend = chat_server::connect(&config).await?;
    let mut stdout = std::io::stdout().lock();
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    writeln!(stdout, "chat-server listening on {scheme}://{addr}")?;
    stdout.flush()?;
    drop(stdout);
    chat_server::run_with(listener, config, backend, chat_server::shutdown_signal()).await?;
    Ok(())
}
