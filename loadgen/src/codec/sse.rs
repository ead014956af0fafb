//! Incremental Server-Sent Events parser (WHATWG rules).
#![allow(dead_code)] // skeleton: filled in next commit

/// The default bound on one event (data + event type + id + a pending line), in bytes.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// One dispatched event, borrowing from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    pub event: &'a str,
    pub data: &'a str,
    pub id: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE event larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

#[derive(Debug, Default)]
pub struct SseParser {
    max_event_bytes: usize,
}

impl SseParser {
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self { max_event_bytes }
    }

    pub fn push(
        &mut self,
        chunk: &[u8],
        on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<(), SseError> {
        let _ = (chunk, on_event);
        Ok(())
    }
}
