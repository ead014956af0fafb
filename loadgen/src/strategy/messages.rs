//! The chat server's message objects as receivers see them (`{id?, name, message, ts?}`), and
//! the client-side diff of a message list (by cursor, or by position for servers without ids).

use std::borrow::Cow;

use serde::Deserialize;
use tokio::time::Instant;

use crate::context::Receiver;
use crate::recorder::Via;

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
pub enum NotAMessageList {
    #[error("the server's answer is not a chat message list: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the server's answer does not match the profile: {0}")]
    Profile(#[from] crate::profile::Mismatch),
    #[error("the profile declares no {0} door")]
    NoDoor(&'static str),
}

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
        self.apply_via(body, rx, now, Via::Live)
    }

    /// The server said the cursor is ahead of its log (`X-Pushpoll-Latest-Id`): its ids started
    /// again (a restart of an in-memory server). Reads the new log from its start, as the chat
    /// page does; true when that happened.
    pub fn restart_if_ahead(&mut self, latest_id: Option<u64>) -> bool {
        let ahead = latest_id.is_some_and(|latest| latest < self.last_id);
        if ahead {
            self.last_id = 0;
        }
        ahead
    }

    /// [`ListCursor::apply`], saying how the list reached the receiver.
    pub fn apply_via(
        &mut self,
        body: &[u8],
        rx: &mut Receiver,
        now: Instant,
        via: Via,
    ) -> Result<ListDiff, NotAMessageList> {
        let items: Vec<Item<'_>> = match rx.ctx.target.custom_profile() {
            None => serde_json::from_slice(body)?,
            Some(profile) => profiled_list(body, profile)?,
        };
        let without_ids = items.iter().any(|i| i.id.is_none());
        let mut new_items = 0;
        if without_ids {
            for item in items.iter().skip(self.seen_len) {
                rx.deliver_text_via(&item.message, now, via);
                new_items += 1;
            }
            self.seen_len = self.seen_len.max(items.len());
        } else {
            // A whole list whose newest id is below the cursor: the log started again.
            let newest = items.iter().filter_map(|i| i.id).max();
            if newest.is_some_and(|n| n < self.last_id) {
                self.last_id = 0;
            }
            for item in &items {
                let id = item.id.unwrap_or_default();
                if id > self.last_id {
                    self.last_id = id;
                    rx.saw_id(id);
                    rx.deliver_text_via(&item.message, now, via);
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

/// A poll answer of a profiled target, read through its poll door's JSON pointers.
fn profiled_list(
    body: &[u8],
    profile: &crate::profile::Profile,
) -> Result<Vec<Item<'static>>, NotAMessageList> {
    let door = profile
        .poll
        .as_ref()
        .ok_or(NotAMessageList::NoDoor("poll"))?;
    let list = crate::profile::extract_list(body, door)?;
    Ok(list
        .into_iter()
        .map(|m| Item {
            id: m.id,
            message: Cow::Owned(m.text),
        })
        .collect())
}

/// [`deliver_item`] for a profiled target: the text and id are read through `text` and `id`
/// pointers.
pub fn deliver_profiled(
    json: &str,
    text: &str,
    id: Option<&str>,
    rx: &mut Receiver,
    now: Instant,
) -> Result<Option<u64>, NotAMessageList> {
    let v: serde_json::Value = serde_json::from_str(json)?;
    let m = crate::profile::extract(&v, text, id)?;
    rx.deliver_text(&m.text, now);
    if let Some(id) = m.id {
        rx.saw_id(id);
    }
    Ok(m.id)
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
    if let Some(id) = item.id {
        rx.saw_id(id);
    }
    Ok(item.id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;
    use crate::context::RunContext;
    use crate::net::TargetAddr;
    use crate::recorder::Recorder;
    use pushpoll_wire::probe::Probe;

    fn receiver() -> Receiver {
        let target = TargetAddr::new("127.0.0.1:9".parse().expect("addr"), "x").expect("host");
        let recorder = Recorder::new(Instant::now(), 5, 1, 8);
        let ctx = RunContext::new(Arc::new(target), recorder, Default::default());
        Receiver::new(0, Arc::new(ctx))
    }

    fn probe_text(seq: u64) -> String {
        let mut text = String::new();
        Probe {
            run_id: 5,
            sender: 0,
            seq,
            intended_ns: 0,
            sent_ns: 0,
        }
        .encode(0, &mut text);
        text
    }

    fn list(items: &[(Option<u64>, String)]) -> Vec<u8> {
        let items: Vec<serde_json::Value> = items
            .iter()
            .map(|(id, m)| match id {
                Some(id) => serde_json::json!({"id": id, "name": "a", "message": m}),
                None => serde_json::json!({"name": "a", "message": m}),
            })
            .collect();
        serde_json::to_vec(&items).expect("json")
    }

    #[test]
    fn a_cursor_list_is_diffed_by_id() {
        let mut rx = receiver();
        let mut cursor = ListCursor::default();
        let body = list(&[(Some(1), probe_text(0)), (Some(2), probe_text(1))]);
        let diff = cursor.apply(&body, &mut rx, Instant::now()).expect("list");
        assert_eq!(
            (diff.new_items, diff.without_ids, cursor.last_id),
            (2, false, 2)
        );
        let body = list(&[(Some(2), probe_text(1)), (Some(3), probe_text(2))]);
        assert_eq!(
            cursor
                .apply(&body, &mut rx, Instant::now())
                .expect("list")
                .new_items,
            1
        );
        assert_eq!(rx.ctx.counters.deliveries.load(Relaxed), 3);
        assert_eq!(rx.ctx.counters.duplicates.load(Relaxed), 0);
    }

    #[test]
    fn a_list_without_ids_is_diffed_by_position() {
        let mut rx = receiver();
        let mut cursor = ListCursor::default();
        let first = list(&[(None, "hello".into()), (None, probe_text(0))]);
        let diff = cursor.apply(&first, &mut rx, Instant::now()).expect("list");
        assert_eq!((diff.new_items, diff.without_ids), (2, true));
        let again = list(&[
            (None, "hello".into()),
            (None, probe_text(0)),
            (None, probe_text(1)),
        ]);
        assert_eq!(
            cursor
                .apply(&again, &mut rx, Instant::now())
                .expect("list")
                .new_items,
            1
        );
        assert_eq!(rx.ctx.counters.deliveries.load(Relaxed), 2);
        assert_eq!(rx.ctx.counters.duplicates.load(Relaxed), 0);
    }

    #[test]
    fn a_non_list_is_an_error() {
        let mut rx = receiver();
        assert!(
            ListCursor::default()
                .apply(b"{}", &mut rx, Instant::now())
                .is_err()
        );
        assert!(deliver_item("[1]", &mut rx, Instant::now()).is_err());
    }

    proptest::proptest! {
        /// Any poll answer or event payload (a target's, so anything): a list applied, or a
        /// protocol error, never a panic.
        #[test]
        fn any_answer_is_applied_or_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut rx = receiver();
            let _ = ListCursor::default().apply(&bytes, &mut rx, Instant::now());
            let _ = deliver_item(&String::from_utf8_lossy(&bytes), &mut rx, Instant::now());
        }
    }
}
