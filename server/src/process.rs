//! The chat server as a process: what `chat-server` and the load generator's spawned child
//! (`loadgen serve-chat`) both run, so they log, start and stop the same way.

use std::future::Future;
use std::io::Write;

use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::{Config, ServerError};

/// Why the process could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot listen on {addr} (try another --addr): {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot announce the address on standard output: {0}")]
    Announce(std::io::Error),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// The multi-threaded runtime a server process runs on: `threads` workers (`--threads`), or one
/// per core. `name` prefixes the worker threads' names.
pub fn runtime(threads: Option<usize>, name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n);
    }
    builder.thread_name(name).enable_all().build()
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Binds `config.addr`, opens the log (a bad `--redis` URL or an unreachable Redis stops the
/// start here, before anything is announced), prints `chat-server listening on SCHEME://ADDR`
/// (the line a parent process waits for), then serves until SIGINT/SIGTERM or until `also_stop`
/// completes, and shuts down gracefully.
pub async fn serve(
    config: Config,
    also_stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProcessError> {
    let addr = config.addr;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ProcessError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ProcessError::Bind { addr, source })?;
    let backend = crate::connect(&config).await?;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "chat-server listening on {scheme}://{bound}")
        .and_then(|()| stdout.flush())
        .map_err(ProcessError::Announce)?;
    drop(stdout);
    let shutdown = async move {
        tokio::select! {
            () = crate::shutdown_signal() => {}
            () = also_stop => {}
        }
    };
    crate::run_with(listener, config, backend, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_has_the_threads_asked_for() {
        let one = runtime(Some(1), "t").expect("runtime");
        assert_eq!(one.metrics().num_workers(), 1);
        let three = runtime(Some(3), "t").expect("runtime");
        assert_eq!(three.metrics().num_workers(), 3);
    }
}
