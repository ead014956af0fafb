//! Starting and stopping: `run` serves on a listener until a shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::assets::Assets;
use crate::broker::{Broker, BrokerError};
use crate::config::Config;
use crate::limits::Limits;
use crate::log::MessageLog;
use crate::metrics::Metrics;
use crate::net::CountingListener;
use crate::state::AppState;
use crate::{accept, routes, socketio};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot listen on {addr}: {source} (is another server using it? try --addr 127.0.0.1:0)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the listener's address: {0}")]
    LocalAddr(std::io::Error),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("the server task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Broker(#[from] BrokerError),
}

/// The log a server serves, ready before it accepts a connection: in memory, or on Redis
/// (connected, its history loaded) with `--redis`.
pub struct Backend {
    log: MessageLog,
    metrics: Metrics,
    broker: Option<Broker>,
}

impl Backend {
    pub fn log(&self) -> &MessageLog {
        &self.log
    }
}

/// Opens the log `config` asks for: a bad `--redis` URL or an unreachable Redis is an error here,
/// at start.
pub async fn connect(config: &Config) -> Result<Backend, ServerError> {
    let metrics = Metrics::new()?;
    let log = MessageLog::new(config.capacity, config.max_message_bytes);
    let broker = match &config.redis {
        Some(url) => Some(Broker::connect(config, url, log.clone(), metrics.clone()).await?),
        None => None,
    };
    Ok(Backend {
        log,
        metrics,
        broker,
    })
}

/// Serves the chat on `listener` until `shutdown` completes, then closes long polls, SSE
/// streams and sockets and returns (waiting at most `config.shutdown_grace` for connections).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let backend = connect(&config).await?;
    serve(listener, config, backend, shutdown).await
}

/// [`run`] with the log already opened by [`connect`] (so a binary can report a bad `--redis`
/// before it announces its address).
pub async fn run_with(
    listener: TcpListener,
    config: Config,
    backend: Backend,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve(listener, config, backend, shutdown).await
}

async fn serve(
    listener: TcpListener,
    config: Config,
    backend: Backend,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = crate::tls::acceptor(config.tls_cert.as_deref(), config.tls_key.as_deref())?;
    let Backend {
        log,
        metrics,
        broker,
    } = backend;
    let (socket_io_service, io) =
        socketio::build(&config, log.clone(), metrics.clone(), broker.clone());
    let stop = CancellationToken::new();
    let broker_tasks = broker.as_ref().map(|b| b.spawn(&stop)).unwrap_or_default();
    let state = AppState {
        log: log.clone(),
        metrics: metrics.clone(),
        assets: Arc::new(Assets::load(config.web_dir.as_deref())),
        config: Arc::new(config),
        shutdown: stop.clone(),
        epoch: broker
            .as_ref()
            .map_or_else(AppState::epoch_now, Broker::epoch),
        io: io.clone(),
        broker,
    };
    let grace = state.config.shutdown_grace;
    let limits = Limits::new(&state.config);
    let log_capacity = state.log.capacity();
    let broadcaster = tokio::spawn(socketio::broadcast(
        io.clone(),
        log,
        metrics.clone(),
        stop.clone(),
    ));
    let app = routes::router(state, socket_io_service);

    let (signalled_tx, signalled_rx) = oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: answering long polls, ending SSE streams, closing sockets");
        stop.cancel();
        // The receiver only disappears when serving already ended; nothing left to tell.
        signalled_tx.send(()).ok();
        if tokio::time::timeout(grace, io.close()).await.is_err() {
            tracing::warn!("Socket.IO sockets did not close within {grace:?}");
        }
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, capacity = log_capacity, "serving the chat");
    }
    let listener = CountingListener::new(listener, &metrics).with_keepalive(limits.tcp_keepalive);
    let server = accept::serve(listener, app, limits, metrics, tls, signal);
    let outcome = tokio::select! {
        () = server => Ok(()),
        () = overdue(signalled_rx, grace) => {
            tracing::warn!("connections still open {:?} after shutdown; leaving them behind", grace * 2);
            Ok(())
        }
    };
    broadcaster.abort();
    for task in broker_tasks {
        task.abort();
    }
    outcome
}

/// Completes `2 × grace` after the shutdown signal fired (never, if it never fires): `grace` for
/// closing sockets, `grace` for the connections to finish.
async fn overdue(signalled: oneshot::Receiver<()>, grace: std::time::Duration) {
    if signalled.await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(grace * 2).await;
}

/// A server running in a tokio task (for tests, benches and the load generator).
pub struct RunningServer {
    addr: SocketAddr,
    log: MessageLog,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

/// Binds `config.addr` (use port 0 for a free port) and serves in a background task.
pub async fn spawn(config: Config) -> Result<RunningServer, ServerError> {
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
    let backend = connect(&config).await?;
    let log = backend.log.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        // Dropping the RunningServer without calling shutdown() also stops the server.
        stopped.await.ok();
    };
    let task = tokio::spawn(serve(listener, config, backend, shutdown));
    Ok(RunningServer {
        addr,
        log,
        stop: Some(stop),
        task,
    })
}

impl RunningServer {
    /// The bound address (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's message log (append to it directly to skip HTTP).
    pub fn log(&self) -> &MessageLog {
        &self.log
    }

    /// Stops the server and waits until it has returned.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            // If the server already ended, there is nobody to tell.
            stop.send(()).ok();
        }
        (&mut self.task).await?
    }
}
