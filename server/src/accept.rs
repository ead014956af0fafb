//! The accept loop: every accepted connection takes one of `--max-connections` slots and is served
//! by [`connection::serve`]; over the limit, one of [`RESERVE`] spare slots answers `503`
//! ([`reserve`]); past those, the connection is closed at once. Graceful shutdown: stop
//! accepting, ask every connection to finish, wait until all have.
//!
//! Why here and not `axum::serve`: axum serves with hyper's defaults and no way to set limits
//! (stream counts, windows, buffers) or to refuse connections.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::serve::Listener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::connection::{self, ConnService, LimitedStream};
use crate::limits::{self, Limits, RESERVE};
use crate::metrics::Metrics;
use crate::net::CountingListener;
use crate::{reserve, tls};

/// Serves `app` on `listener` until `signal` completes and every connection has finished.
pub async fn serve(
    mut listener: CountingListener,
    app: Router,
    mut limits: Limits,
    metrics: Metrics,
    tls: Option<TlsAcceptor>,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    let open_files = limits::open_files_limit();
    let fitted = limits::fit_open_files(limits.max_connections, open_files);
    if fitted < limits.max_connections {
        tracing::warn!(
            "--max-connections {} lowered to {fitted} to fit the open-files limit ({}); raise it \
             with `ulimit -n`",
            limits.max_connections,
            open_files.unwrap_or_default()
        );
        limits.max_connections = fitted;
    }
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let reserve_slots = Arc::new(Semaphore::new(RESERVE));
    let builder = limits.builder();

    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        signal.await;
        stopping.cancel();
    });
    // Every connection task holds a receiver; `closed()` completes when all are gone.
    let (all_done, connection_alive) = watch::channel(());

    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let alive = connection_alive.clone();
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            let (app, metrics, stop, builder) =
                (app.clone(), metrics.clone(), stop.clone(), builder.clone());
            let tls = tls.clone();
            // The TLS handshake (if any) runs in the connection's own task, never in this loop.
            tokio::spawn(async move {
                if let Some(stream) = tls::open(tls.as_ref(), stream, limits.header_timeout).await {
                    let io = LimitedStream::new(stream, slot, &metrics);
                    let service = ConnService::new(app, io.activity().clone(), &limits, &metrics);
                    connection::serve(builder, io, service, limits, metrics, stop).await;
                }
                drop(alive);
            });
        } else if let Ok(slot) = reserve_slots.clone().try_acquire_owned() {
            metrics.over_limit_reserve.inc();
            let (app, metrics, stop) = (app.clone(), metrics.clone(), stop.clone());
            let tls = tls.clone();
            tokio::spawn(async move {
                if let Some(stream) = tls::open(tls.as_ref(), stream, limits.header_timeout).await {
                    let io = LimitedStream::new(stream, slot, &metrics);
                    reserve::serve(io, app, limits, stop).await;
                }
                drop(alive);
            });
        } else {
            metrics.over_limit_closed.inc();
            drop(stream);
        }
    }
    drop(connection_alive);
    drop(listener);
    all_done.closed().await;
}
