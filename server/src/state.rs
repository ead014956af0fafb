//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;
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
    /// Distinguishes this process's ETags from those of an earlier run (ids restart at 1); on a
    /// cluster, shared by every node (kept in Redis), so a `304` holds whichever node answers.
    pub epoch: u64,
    pub io: SocketIo,
    /// The shared log of a cluster (`--redis`); `None`: this process's log is the chat.
    pub broker: Option<Broker>,
}

/// On a cluster, how long a request whose cursor is ahead of this node's log waits for the node
/// to read the newer messages (the client came from a node that had them already), and how long
/// a `POST` waits for its message to be readable here (read-your-writes).
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(1);

impl AppState {
    /// On a cluster, waits (at most [`CATCH_UP_WAIT`]) until this node's log holds `id`.
    /// In memory the log is the chat: an id it lacks never existed, so nothing waits.
    pub async fn catch_up(&self, id: u64) {
        if self.broker.is_none() || id <= self.log.latest_id() {
            return;
        }
        let mut latest = self.log.subscribe();
        if tokio::time::timeout(CATCH_UP_WAIT, latest.wait_for(|&l| l >= id))
            .await
            .is_err()
        {
            tracing::debug!(id, "this node's log did not reach the id in time");
        }
    }

    pub fn epoch_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
