//! Incremental Server-Sent Events parser, following the WHATWG event-stream rules.
//!
//! Lines end in `\n`, `\r\n` or `\r`; a chunk may end anywhere, inside a UTF-8 character or
//! between `\r` and `\n`. Fields are `data` (lines joined by `\n`), `event`, `id` and `retry`;
//! lines starting with `:` are comments; a blank line dispatches the event. Invalid UTF-8 becomes
//! U+FFFD, as a browser decodes it. An unterminated event at the end of a stream is never
//! dispatched, so there is no `finish`.
//!
//! Memory is bounded: an event (its data, type, id and the line being read) larger than the limit
//! is an error and the parser refuses further input, so a broken server cannot grow it unboundedly.

/// The default bound on one event (data + event type + id + a pending line), in bytes.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event, borrowing from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event` field, `"message"` when the event named none.
    pub event: &'a str,
    /// All `data` lines joined by `\n`.
    pub data: &'a str,
    /// The last event id seen on the stream (it persists across events), `None` if none or empty.
    pub id: Option<&'a str>,
}

/// Why the stream cannot be parsed further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE event larger than {limit} bytes; the server is not sending a sane event stream")]
    EventTooLarge { limit: usize },
}

/// Parses an event stream chunk by chunk, as it arrives.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// The start of a line whose end has not arrived yet.
    line: Vec<u8>,
    data: String,
    event_type: String,
    last_id: String,
    retry_ms: Option<u64>,
    /// The last chunk ended in `\r`: a `\n` starting the next chunk belongs to that line end.
    skip_lf: bool,
    /// No line finished yet: the first may start with a byte order mark, which is dropped.
    at_stream_start: bool,
    max_event_bytes: usize,
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the [`DEFAULT_MAX_EVENT_BYTES`] limit.
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that fails on events larger than `max_event_bytes`.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            event_type: String::new(),
            last_id: String::new(),
            retry_ms: None,
            skip_lf: false,
            at_stream_start: true,
            max_event_bytes,
            failed: None,
        }
    }

    /// The last event id, to send as `Last-Event-ID` when reconnecting.
    pub fn last_event_id(&self) -> Option<&str> {
        (!self.last_id.is_empty()).then_some(self.last_id.as_str())
    }

    /// The reconnection delay the server asked for with `retry:`, in milliseconds.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Feeds the next chunk of the stream, calling `on_event` for every event it completes.
    /// After an error the parser stays failed and returns the same error for every chunk.
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<(), SseError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut rest = chunk;
        if std::mem::take(&mut self.skip_lf) && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.line.is_empty() {
                self.process_line(&rest[..end], &mut on_event)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                let result = self.process_line(&line, &mut on_event);
                line.clear();
                self.line = line; // keep the capacity for the next split line
                result?;
            }
            let cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.line.extend_from_slice(rest);
        self.check_size()
    }

    fn process_line(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>),
    ) -> Result<(), SseError> {
        let line = match std::mem::replace(&mut self.at_stream_start, false) {
            true => line.strip_prefix(BOM).unwrap_or(line),
            false => line,
        };
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(0) => return Ok(()), // comment
            Some(i) => (
                &text[..i],
                text[i + 1..].strip_prefix(' ').unwrap_or(&text[i + 1..]),
            ),
            None => (&*text, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => set(&mut self.event_type, value),
            "id" if !value.contains('\0') => set(&mut self.last_id, value),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Too many digits for a u64 is a nonsense delay: ignore it like any bad field.
                if let Ok(ms) = value.parse() {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {} // unknown fields are ignored
        }
        self.check_size()
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        on_event(SseEvent {
            event: if self.event_type.is_empty() {
                "message"
            } else {
                &self.event_type
            },
            data: &self.data,
            id: self.last_event_id(),
        });
        self.data.clear();
        self.event_type.clear();
    }

    fn check_size(&mut self) -> Result<(), SseError> {
        let size = self.line.len() + self.data.len() + self.event_type.len() + self.last_id.len();
        if size > self.max_event_bytes {
            let e = SseError::EventTooLarge {
                limit: self.max_event_bytes,
            };
            self.failed = Some(e);
            return Err(e);
        }
        Ok(())
    }
}

fn set(buf: &mut String, value: &str) {
    buf.clear();
    buf.push_str(value);
}

#[cfg(test)]
mod tests;
