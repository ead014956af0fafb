//! The one message log every door reads: a bounded ring of pre-serialized messages with monotonic
//! ids (1, 2, 3, …) and a change signal (a `watch` of the latest id).
//!
//! Each message is serialized to JSON once, when appended; poll answers are concatenations of
//! those bytes, and SSE and Socket.IO send the same bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// A stored chat message as every door shows it. `ts` (ms since the Unix epoch) is for display
/// only; latency is never measured with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: u64,
    pub name: String,
    pub message: String,
    pub ts: u64,
}

/// A message as the log holds it: its id and its JSON serialization (cheap to clone).
#[derive(Clone, Debug)]
pub struct StoredMessage {
    id: u64,
    json: Bytes,
}

impl StoredMessage {
    /// Serializes a message once: the bytes every door sends.
    pub fn encode(id: u64, name: &str, message: &str, ts: u64) -> StoredMessage {
        let json = serde_json::to_vec(&MessageRef {
            id,
            name,
            message,
            ts,
        })
        .expect("serializing strings and integers cannot fail");
        StoredMessage {
            id,
            json: Bytes::from(json),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// The message's JSON object, exactly as every door sends it.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The JSON as text (always valid UTF-8: it was produced by serde_json).
    pub fn json_str(&self) -> &str {
        std::str::from_utf8(&self.json).expect("serde_json writes UTF-8")
    }

    /// Parses the stored JSON back into a [`Message`].
    pub fn decode(&self) -> Message {
        serde_json::from_slice(&self.json).expect("the log only holds serialized Messages")
    }
}

/// What [`MessageLog::ingest`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ingested {
    Stored,
    /// Its id was already held (a replay after a reconnect): ignored.
    Duplicate,
    /// Stored after `lost` ids this log never received.
    AfterGap {
        lost: u64,
    },
}

/// Why a message was not stored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AppendError {
    #[error("`message` is empty; send some text")]
    EmptyMessage,
    #[error(
        "name and message together are {size} bytes, over the limit of {limit} (--max-message-bytes)"
    )]
    TooLarge { size: usize, limit: usize },
}

/// The answer to [`MessageLog::since`]: retained messages after a cursor, and whether the cursor
/// was older than the oldest retained message (then `missed` messages are gone for good).
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub messages: Vec<StoredMessage>,
    /// Messages after the cursor that were evicted before this read.
    pub missed: u64,
    /// Id of the oldest retained message (None when the log is empty).
    pub oldest_id: Option<u64>,
    /// Id of the newest message ever appended (0 when none).
    pub latest_id: u64,
}

impl Page {
    /// The messages as a JSON array, `[{…},{…}]`, built by concatenation.
    pub fn json_array(&self) -> Bytes {
        let len: usize = self
            .messages
            .iter()
            .map(|m| m.json.len() + 1)
            .sum::<usize>()
            + 2;
        let mut out = BytesMut::with_capacity(len);
        out.put_u8(b'[');
        for (i, m) in self.messages.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            out.put_slice(&m.json);
        }
        out.put_u8(b']');
        out.freeze()
    }

    /// Id of the last message in the page, if any.
    pub fn last_id(&self) -> Option<u64> {
        self.messages.last().map(StoredMessage::id)
    }
}

/// What [`MessageLog::page_info`] knows about a page without copying it: the id range it covers,
/// the size of its JSON array, and the same gap fields as [`Page`]. Messages never change once
/// stored, so the ids `first_id..=last_id` always stand for the same bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// Id of the first message in the page (meaningless when `count` is 0).
    pub first_id: u64,
    /// Number of messages in the page (ids `first_id..first_id + count`).
    pub count: u64,
    /// Length of the page as a JSON array (`[`, the messages joined by `,`, `]`).
    pub json_len: u64,
    pub missed: u64,
    pub oldest_id: Option<u64>,
    pub latest_id: u64,
}

/// The shared, bounded, in-memory chat history. Cloning is cheap (an `Arc`).
#[derive(Clone, Debug)]
pub struct MessageLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    // std Mutex: critical sections are a few pointer moves and never span an `.await`.
    ring: Mutex<VecDeque<StoredMessage>>,
    capacity: usize,
    max_message_bytes: usize,
    latest: watch::Sender<u64>,
}

impl MessageLog {
    /// A log retaining up to `capacity` messages (at least 1) of at most `max_message_bytes`
    /// (name + message).
    pub fn new(capacity: usize, max_message_bytes: usize) -> Self {
        let capacity = capacity.max(1);
        MessageLog {
            inner: Arc::new(Inner {
                ring: Mutex::new(VecDeque::with_capacity(capacity.min(1 << 16))),
                capacity,
                max_message_bytes,
                latest: watch::Sender::new(0),
            }),
        }
    }

    /// The checks [`MessageLog::append`] makes before storing (also made before a message is
    /// sent to the shared log of a cluster, `crate::broker`).
    pub fn check(&self, name: &str, message: &str) -> Result<(), AppendError> {
        if message.trim().is_empty() {
            return Err(AppendError::EmptyMessage);
        }
        let size = name.len() + message.len();
        if size > self.inner.max_message_bytes {
            return Err(AppendError::TooLarge {
                size,
                limit: self.inner.max_message_bytes,
            });
        }
        Ok(())
    }

    /// Validates, stamps and stores a message; wakes every waiter. Every door calls this.
    pub fn append(&self, name: &str, message: &str) -> Result<StoredMessage, AppendError> {
        self.check(name, message)?;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut ring = self.ring();
        let id = *self.inner.latest.borrow() + 1;
        let stored = StoredMessage::encode(id, name, message, ts);
        if ring.len() == self.inner.capacity {
            ring.pop_front();
        }
        ring.push_back(stored.clone());
        // Published while the ring is locked, so the signal never runs backwards.
        self.inner.latest.send_replace(id);
        Ok(stored)
    }

    /// Stores a message whose id was given elsewhere (the shared log of a cluster): the next id
    /// is stored, an id already held is ignored, and an id past a gap (messages the shared log
    /// lost before this node saw them) empties the ring first, so the ring stays contiguous and
    /// readers behind the gap are told they `missed` messages. Wakes every waiter.
    pub fn ingest(&self, stored: StoredMessage) -> Ingested {
        let mut ring = self.ring();
        let latest = *self.inner.latest.borrow();
        let outcome = if stored.id <= latest {
            return Ingested::Duplicate;
        } else if stored.id == latest + 1 || ring.is_empty() {
            Ingested::Stored
        } else {
            ring.clear();
            Ingested::AfterGap {
                lost: stored.id - latest - 1,
            }
        };
        if ring.len() == self.inner.capacity {
            ring.pop_front();
        }
        let id = stored.id;
        ring.push_back(stored);
        self.inner.latest.send_replace(id);
        outcome
    }

    /// Retained messages with id > `since`, oldest first, at most `limit` of them.
    pub fn since(&self, since: u64, limit: usize) -> Page {
        let ring = self.ring();
        let latest_id = *self.inner.latest.borrow();
        let Some(oldest) = ring.front().map(StoredMessage::id) else {
            return Page {
                latest_id,
                ..Page::default()
            };
        };
        let missed = oldest.saturating_sub(since.saturating_add(1));
        // Ids are contiguous in the ring, so the first wanted message sits at a known index.
        let skip =
            usize::try_from(since.saturating_add(1).saturating_sub(oldest)).unwrap_or(usize::MAX);
        let messages = ring.iter().skip(skip).take(limit).cloned().collect();
        Page {
            messages,
            missed,
            oldest_id: Some(oldest),
            latest_id,
        }
    }

    /// The page [`MessageLog::since`] would return, described without cloning any message: a
    /// sum of lengths under the lock, so answering it later costs refcounts, not copies.
    pub fn page_info(&self, since: u64, limit: usize) -> PageInfo {
        let ring = self.ring();
        let latest_id = *self.inner.latest.borrow();
        let Some(oldest) = ring.front().map(StoredMessage::id) else {
            return PageInfo {
                json_len: 2,
                latest_id,
                ..PageInfo::default()
            };
        };
        let missed = oldest.saturating_sub(since.saturating_add(1));
        let skip = usize::try_from(since.saturating_add(1).saturating_sub(oldest))
            .unwrap_or(usize::MAX)
            .min(ring.len());
        let end = skip.saturating_add(limit).min(ring.len());
        let (count, bytes) = ring.range(skip..end).fold((0u64, 0u64), |(n, len), m| {
            (n + 1, len + m.json.len() as u64)
        });
        PageInfo {
            first_id: oldest + skip as u64,
            count,
            json_len: 2 + bytes + count.saturating_sub(1),
            missed,
            oldest_id: Some(oldest),
            latest_id,
        }
    }

    /// Id of the newest message (0 before the first).
    pub fn latest_id(&self) -> u64 {
        *self.inner.latest.borrow()
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.ring().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// A receiver of the latest id: long polls, SSE streams and the Socket.IO broadcaster wait on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.latest.subscribe()
    }

    fn ring(&self) -> MutexGuard<'_, VecDeque<StoredMessage>> {
        // A panic while holding this lock cannot leave the ring inconsistent (push/pop only).
        self.inner
            .ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Serialize)]
struct MessageRef<'a> {
    id: u64,
    name: &'a str,
    message: &'a str,
    ts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_and_grow() {
        let log = MessageLog::new(10, 100);
        assert_eq!(log.latest_id(), 0);
        let a = log.append("ann", "hi").expect("stored");
        let b = log.append("bob", "yo").expect("stored");
        assert_eq!((a.id(), b.id()), (1, 2));
        let m = b.decode();
        assert_eq!(
            (m.id, m.name.as_str(), m.message.as_str()),
            (2, "bob", "yo")
        );
        assert_eq!(log.latest_id(), 2);
    }

    #[test]
    fn since_returns_newer_messages_and_limit_caps() {
        let log = MessageLog::new(10, 100);
        for i in 0..5 {
            log.append("n", &format!("m{i}")).expect("stored");
        }
        let page = log.since(2, 10);
        assert_eq!(
            page.messages
                .iter()
                .map(StoredMessage::id)
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
        assert_eq!(page.missed, 0);
        assert_eq!(log.since(0, 2).last_id(), Some(2));
        assert!(log.since(5, 10).messages.is_empty());
        assert!(log.since(99, 10).messages.is_empty());
    }

    #[test]
    fn eviction_is_reported_as_missed() {
        let log = MessageLog::new(3, 100);
        for i in 0..7 {
            log.append("n", &format!("m{i}")).expect("stored");
        }
        assert_eq!(log.len(), 3);
        let page = log.since(0, 100);
        assert_eq!(page.oldest_id, Some(5));
        assert_eq!(page.missed, 4);
        assert_eq!(page.messages.len(), 3);
        assert_eq!(log.since(4, 100).missed, 0);
        assert_eq!(log.since(3, 100).missed, 1);
    }

    #[test]
    fn json_array_is_valid_json() {
        let log = MessageLog::new(3, 100);
        assert_eq!(&log.since(0, 10).json_array()[..], b"[]");
        log.append("a\"b", "<i>x</i>").expect("stored");
        log.append("c", "d").expect("stored");
        let parsed: Vec<Message> =
            serde_json::from_slice(&log.since(0, 10).json_array()).expect("valid JSON array");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].name, "a\"b");
    }

    #[test]
    fn page_info_describes_the_page_since_returns() {
        let log = MessageLog::new(4, 100);
        assert_eq!(log.page_info(0, 10).json_len, 2);
        for i in 0..6 {
            log.append("n", &format!("m{i}")).expect("stored");
        }
        for (since, limit) in [(0, 10), (2, 1), (3, 2), (4, 10), (6, 10), (99, 10), (0, 0)] {
            let page = log.since(since, limit);
            let info = log.page_info(since, limit);
            assert_eq!(
                info.json_len,
                page.json_array().len() as u64,
                "{since} {limit}"
            );
            assert_eq!(info.count, page.messages.len() as u64);
            if let Some(first) = page.messages.first() {
                assert_eq!(info.first_id, first.id());
            }
            assert_eq!(
                (info.missed, info.oldest_id, info.latest_id),
                (page.missed, page.oldest_id, page.latest_id)
            );
        }
    }

    #[test]
    fn invalid_messages_are_refused_and_not_stored() {
        let log = MessageLog::new(3, 10);
        assert!(matches!(
            log.append("a", "  "),
            Err(AppendError::EmptyMessage)
        ));
        assert!(matches!(
            log.append("abcdef", "ghijk"),
            Err(AppendError::TooLarge {
                size: 11,
                limit: 10
            })
        ));
        assert_eq!(log.latest_id(), 0);
        assert!(log.is_empty());
    }

    #[test]
    fn ingest_keeps_ids_contiguous_ignores_replays_and_reports_gaps() {
        let log = MessageLog::new(10, 100);
        let at = |id| StoredMessage::encode(id, "n", "m", 0);
        // A node joining late starts at the oldest id the shared log retains.
        assert_eq!(log.ingest(at(5)), Ingested::Stored);
        assert_eq!(log.since(0, 10).missed, 4);
        assert_eq!(log.ingest(at(6)), Ingested::Stored);
        assert_eq!(log.ingest(at(6)), Ingested::Duplicate);
        assert_eq!(log.ingest(at(3)), Ingested::Duplicate);
        assert_eq!(log.ingest(at(9)), Ingested::AfterGap { lost: 2 });
        assert_eq!(log.latest_id(), 9);
        let page = log.since(6, 10);
        assert_eq!((page.missed, page.last_id()), (2, Some(9)));
        assert_eq!(log.len(), 1);
        assert_eq!(log.since(8, 10).last_id(), Some(9));
    }

    #[tokio::test]
    async fn subscribers_see_the_latest_id() {
        let log = MessageLog::new(3, 100);
        let mut rx = log.subscribe();
        log.append("a", "b").expect("stored");
        let seen = *rx.wait_for(|&id| id >= 1).await.expect("sender alive");
        assert_eq!(seen, 1);
    }
}
