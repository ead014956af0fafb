//! The chat server's message objects as receivers see them (`{id?, name, message, ts?}`), and
//! the client-side diff of a message list (by cursor, or by position for servers without ids).

use std::borrow::Cow;

use serde::Deserialize;
use tokio::time::Instant;

use crate::context::Receiver;

/// One stored message; only `message` is required (the tutorial's server stores just
/// `{name, message}`).
#[derive(Debug, Deserialize)]
pub struct Item<'a> {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

#[derive(Debug, thiserror::Error)]
#[error("the server's answer is not a chat message list: {0}")]
pub struct NotAMessageList(#[from] serde_json::Error);

/// How far a receiver has read a message list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListCursor {
    /// Highest message id seen (the `since` of the next request).
    pub last_id: u64,
    /// Items already seen, for lists without ids (an append-only list diffed by position).
    pub seen_len: usize,
}

/// What a list answer contained for the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListDiff {
    /// Items not seen before.
    pub new_items: usize,
    /// The list carried no ids: the server has no cursor support.
    pub without_ids: bool,
}

impl ListCursor {
    /// Hands every not-yet-seen item of `body` (a JSON array) to the receiver.
    pub fn apply(
        &mut self,
        body: &[u8],
        rx: &mut Receiver,
        now: Instant,
    ) -> Result<ListDiff, NotAMessageList> {
        let items: Vec<Item<'_>> = serde_json::from_slice(body)?;
        let without_ids = items.iter().any(|i| i.id.is_none());
        let mut new_items = 0;
        if without_ids {
            for item in items.iter().skip(self.seen_len) {
                rx.deliver_text(&item.message, now);
                new_items += 1;
            }
            self.seen_len = self.seen_len.max(items.len());
        } else {
            for item in &items {
                let id = item.id.unwrap_or_default();
                if id > self.last_id {
                    self.last_id = id;
                    rx.deliver_text(&item.message, now);
                    new_items += 1;
                }
            }
        }
        Ok(ListDiff {
            new_items,
            without_ids,
        })
    }
}

/// Parses one message object (an SSE `data:` or a Socket.IO event argument) and delivers it.
/// Returns the message id, if it has one.
pub fn deliver_item(
    json: &str,
    rx: &mut Receiver,
    now: Instant,
) -> Result<Option<u64>, NotAMessageList> {
    let item: Item<'_> = serde_json::from_str(json)?;
    rx.deliver_text(&item.message, now);
    Ok(item.id)
}
