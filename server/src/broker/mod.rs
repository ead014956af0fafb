//! The shared log of a cluster (`--redis URL`): several nodes serve one chat through one Redis.
//!
//! - Appends go to a Redis Stream through one Lua script (`script`): the id is an integer taken
//!   from a counter in the same atomic step, so ids are 1, 2, 3… on every node and stream order
//!   is id order. A door answers only after Redis replied (`POST` → `201`); when Redis cannot be
//!   reached it answers `503` and nothing is acknowledged that was not stored.
//! - Every node, the one that appended included, reads the stream back (`follow`) into its own
//!   in-memory `MessageLog`; every door follows that log as before, so each message reaches each
//!   door of each node once, in id order.
//! - At start a node loads the retained tail (`--capacity` messages), so a restart keeps the
//!   history and the ids, and a cursor from before stays valid on any node.
//! - `link`: one counted connection re-opened with backoff; `resp`: bytes on the wire;
//!   `stream`: the entries' format.

mod follow;
mod link;
mod resp;
mod script;
mod stream;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::log::{MessageLog, StoredMessage};
use crate::metrics::Metrics;
use link::Link;
use script::{AppendArgs, Keys};

/// An append (and a ping) not answered within this is given up (`503`).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// Socket.IO messages waiting for Redis, per node; more are dropped (and counted).
const SOCKET_QUEUE: usize = 4096;

/// Why the shared log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "--redis {url:?} is not a usable Redis URL: {reason} (expected redis://HOST:PORT, \
         optionally /DB)"
    )]
    BadUrl { url: String, reason: String },
    #[error("Redis at {target} is unreachable: {reason}")]
    Unavailable { target: String, reason: String },
    #[error("Redis refused a command: {0}")]
    Command(redis::RedisError),
    #[error("Redis answered something unexpected: {0}")]
    Reply(String),
}

/// The handle every door uses in a cluster. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Link,
    /// A connection of its own: its `XREAD BLOCK` would hold up the writer's requests.
    follower: Link,
    keys: Keys,
    /// SHA1 of the append script (loaded again if Redis forgot it).
    sha: Mutex<String>,
    capacity: usize,
    /// The ETag epoch every node of this chat shares.
    epoch: u64,
    log: MessageLog,
    metrics: Metrics,
    socket_tx: mpsc::Sender<(String, String)>,
    socket_rx: Mutex<Option<mpsc::Receiver<(String, String)>>>,
}

impl Broker {
    /// Checks the URL, connects, loads the append script and the retained history into `log`.
    pub async fn connect(
        config: &Config,
        url: &str,
        log: MessageLog,
        metrics: Metrics,
    ) -> Result<Broker, BrokerError> {
        let bad_url = |e: redis::RedisError| BrokerError::BadUrl {
            url: redact(url),
            reason: e.to_string(),
        };
        let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(bad_url)?;
        // No `CLIENT SETINFO` on connect: without a password or a database in the URL, every byte
        // on the connection is then a command or a reply the broker counts.
        let settings = info.redis_settings().clone().set_skip_set_lib_name();
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(bad_url)?;
        let target = redact(url);
        let link = |timeout| {
            Link::new(
                client.clone(),
                target.clone(),
                timeout,
                metrics.broker.clone(),
            )
        };
        let writer = link(WRITE_TIMEOUT);
        let follower = link(Duration::from_millis(follow::BLOCK_MS) + WRITE_TIMEOUT);
        let sha = load_script(&writer).await?;
        let keys = Keys::new(&config.redis_key);
        let epoch = match writer
            .request(&script::epoch(&keys, now_micros() / 1000))
            .await?
        {
            Value::BulkString(text) => String::from_utf8_lossy(&text).parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| BrokerError::Reply(format!("{} does not hold a number", keys.epoch)))?;
        let history = writer
            .request(&stream::newest(&keys.stream, config.capacity))
            .await?;
        let mut entries = stream::parse_entries(history).map_err(BrokerError::Reply)?;
        entries.reverse();
        let loaded = entries.len();
        follow::ingest(&log, &metrics.broker, entries, false);
        tracing::info!(
            redis = %target,
            loaded,
            latest_id = log.latest_id(),
            "sharing the log through Redis"
        );
        let (socket_tx, socket_rx) = mpsc::channel(SOCKET_QUEUE);
        Ok(Broker {
            inner: Arc::new(Inner {
                writer,
                follower,
                keys,
                sha: Mutex::new(sha),
                capacity: config.capacity,
                epoch,
                log,
                metrics,
                socket_tx,
                socket_rx: Mutex::new(Some(socket_rx)),
            }),
        })
    }

    /// Starts the follower and the Socket.IO appender; both end when `stop` is cancelled.
    pub fn spawn(&self, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        let follower = {
            let broker = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let inner = &broker.inner;
                follow::follow(
                    &inner.follower,
                    &inner.keys,
                    &inner.log,
                    &inner.metrics.broker,
                    &stop,
                )
                .await;
            })
        };
        let mut tasks = vec![follower];
        let rx = self
            .inner
            .socket_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(rx) = rx {
            tasks.push(tokio::spawn(append_socket_messages(
                self.clone(),
                rx,
                stop.clone(),
            )));
        }
        tasks
    }

    /// Stores a message in Redis; `Ok` only once Redis has it. Validation is the caller's.
    pub async fn append(&self, name: &str, message: &str) -> Result<StoredMessage, BrokerError> {
        let result = self.try_append(name, message).await;
        match &result {
            Ok(_) => self.inner.metrics.broker.appends.inc(),
            Err(_) => self.inner.metrics.broker.append_failures.inc(),
        }
        result
    }

    async fn try_append(&self, name: &str, message: &str) -> Result<StoredMessage, BrokerError> {
        let inner = &self.inner;
        let micros = now_micros();
        let args = AppendArgs {
            floor: inner.log.latest_id(),
            capacity: inner.capacity,
            name,
            message,
            micros,
        };
        let mut reply = inner
            .writer
            .request(&script::append(&self.sha(), &inner.keys, &args))
            .await;
        if matches!(&reply, Err(BrokerError::Command(e)) if e.code() == Some("NOSCRIPT")) {
            // Redis restarted and forgot the script.
            let sha = load_script(&inner.writer).await?;
            *inner
                .sha
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = sha.clone();
            reply = inner
                .writer
                .request(&script::append(&sha, &inner.keys, &args))
                .await;
        }
        match reply? {
            Value::Int(id) if id > 0 => Ok(StoredMessage::encode(
                id.unsigned_abs(),
                name,
                message,
                micros / 1000,
            )),
            other => Err(BrokerError::Reply(format!(
                "the append script returned {other:?}"
            ))),
        }
    }

    /// Queues a Socket.IO message for Redis (events have no answer to wait for); appended in
    /// the order queued. A full queue drops it (counted as an append failure).
    pub fn submit(&self, name: String, message: String) {
        if self.inner.socket_tx.try_send((name, message)).is_err() {
            self.inner.metrics.broker.append_failures.inc();
            tracing::debug!("Socket.IO message dropped: the queue to Redis is full");
        }
    }

    /// Whether Redis answers `PING` now.
    pub async fn ping(&self) -> Result<(), BrokerError> {
        match self.inner.writer.request(&redis::cmd("PING")).await? {
            Value::SimpleString(s) if s == "PONG" => Ok(()),
            other => Err(BrokerError::Reply(format!("PING answered {other:?}"))),
        }
    }

    /// The ETag epoch every node of this chat shares.
    pub fn epoch(&self) -> u64 {
        self.inner.epoch
    }

    /// Where Redis is (credentials left out).
    pub fn target(&self) -> &str {
        self.inner.writer.target()
    }

    fn sha(&self) -> String {
        self.inner
            .sha
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn load_script(link: &Link) -> Result<String, BrokerError> {
    match link.request(&script::load()).await? {
        Value::BulkString(sha) => String::from_utf8(sha)
            .map_err(|e| BrokerError::Reply(format!("SCRIPT LOAD answered a non-text SHA: {e}"))),
        other => Err(BrokerError::Reply(format!(
            "SCRIPT LOAD answered {other:?}"
        ))),
    }
}

/// Appends Socket.IO messages one after the other, so a socket's messages keep their order.
async fn append_socket_messages(
    broker: Broker,
    mut rx: mpsc::Receiver<(String, String)>,
    stop: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            next = rx.recv() => next,
            () = stop.cancelled() => return,
        };
        let Some((name, message)) = next else { return };
        match broker.append(&name, &message).await {
            Ok(_) => broker.inner.metrics.messages_stored_socketio.inc(),
            Err(e) => tracing::debug!("a Socket.IO message was not stored: {e}"),
        }
    }
}

pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The URL without a password (`redis://user:secret@host` → `redis://user:…@host`).
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if at > scheme.len() => {
            let userinfo = &rest[..at - scheme.len() - 3];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:…@{}", &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_error_messages() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://user:secret@db.example:6379/2"),
            "redis://user:…@db.example:6379/2"
        );
        assert_eq!(redact("redis://:secret@h:1"), "redis://:…@h:1");
    }
}
