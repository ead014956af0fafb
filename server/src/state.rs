//! What every handler shares.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;

use crate::assets::Assets;
use crate::broker::Broker;
use crate::config::Config;
use crate::log::MessageLog;
use crate::metrics::Metrics;

/// Shared handles (all cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub log: MessageLog,
    pub metrics: Metrics,
    pub config: Arc<Config>,
    pub assets: Arc<Assets>,
    /// Cancelled when the server shuts down: long polls answer, SSE streams end.
    pub shutdown: CancellationToken,
    /// Distinguishes this process's ETags from those of an earlier run (ids restart at 1).
    pub epoch: u64,
    pub io: SocketIo,
    /// The shared log of a cluster (`--redis`); `None`: this process's log is the chat.
    pub broker: Option<Broker>,
}

impl AppState {
    pub fn epoch_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
