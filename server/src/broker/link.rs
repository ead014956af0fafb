//! One connection to Redis, counted and re-opened with backoff: a lost connection is dropped, the
//! next request opens a new one (at most one attempt per backoff step: 50 ms doubling to 2 s),
//! and every byte of every command and reply is counted in `/metrics`.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd, Value};
use tokio::sync::Mutex;

use super::BrokerError;
use super::resp::reply_len;
use crate::metrics::BrokerMetrics;

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    /// Where the link points (`redis://host:port`), for error messages.
    target: String,
    metrics: BrokerMetrics,
    /// An async mutex: one caller opens the connection while the others wait for it.
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    conn: Option<MultiplexedConnection>,
    /// No new attempt before this instant (after a failed one).
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Whether a connection was ever open (a later one counts as a reconnect).
    opened_before: bool,
}

impl Link {
    /// A link whose requests time out after `response_timeout` (longer than any `BLOCK`).
    pub fn new(
        client: Client,
        target: String,
        response_timeout: Duration,
        metrics: BrokerMetrics,
    ) -> Link {
        Link {
            client,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(response_timeout)),
            target,
            metrics,
            slot: Mutex::new(Slot::default()),
        }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Sends one command and returns Redis's reply (a server error reply is an `Err`).
    pub async fn request(&self, cmd: &Cmd) -> Result<Value, BrokerError> {
        let mut conn = self.connection().await?;
        self.metrics
            .bytes_to_redis
            .inc_by(cmd.get_packed_command().len() as u64);
        match conn.req_packed_command(cmd).await {
            Ok(Value::ServerError(e)) => {
                self.metrics
                    .bytes_from_redis
                    .inc_by(reply_len(&Value::ServerError(e.clone())));
                Err(BrokerError::Command(redis::RedisError::from(e)))
            }
            Ok(value) => {
                self.metrics.bytes_from_redis.inc_by(reply_len(&value));
                Ok(value)
            }
            // Redis answered with an error (NOSCRIPT, a wrong type…): the connection is fine.
            Err(e) if e.code().is_some() => Err(BrokerError::Command(e)),
            Err(e) => {
                // The connection is lost or stuck: the next request opens a new one.
                self.slot.lock().await.conn = None;
                Err(BrokerError::Unavailable {
                    target: self.target.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection, BrokerError> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = &slot.conn {
            return Ok(conn.clone());
        }
        if let Some(at) = slot.retry_at
            && Instant::now() < at
        {
            return Err(BrokerError::Unavailable {
                target: self.target.clone(),
                reason: format!(
                    "not connected; next attempt in {} ms",
                    at.saturating_duration_since(Instant::now()).as_millis()
                ),
            });
        }
        match self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
        {
            Ok(conn) => {
                if slot.opened_before {
                    self.metrics.reconnects.inc();
                    tracing::info!(redis = %self.target, "connected to Redis again");
                }
                slot.opened_before = true;
                slot.retry_at = None;
                slot.backoff = Duration::ZERO;
                slot.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                slot.backoff = (slot.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                slot.retry_at = Some(Instant::now() + slot.backoff);
                Err(BrokerError::Unavailable {
                    target: self.target.clone(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// How long until the next connection attempt may be made (zero when connected).
    pub async fn retry_in(&self) -> Duration {
        let slot = self.slot.lock().await;
        slot.retry_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        })
    }
}
