//! A minimal Server-Sent Events reader over a reqwest byte stream.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// One parsed event (`event:` defaults to "message").
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

pub struct SseReader {
    stream: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub async fn open(request: reqwest::RequestBuilder) -> SseReader {
        let response = request.send().await.expect("GET /events");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseReader {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments and `retry:` skipped), or None when the stream ended.
    pub async fn next_event(&mut self, deadline: Duration) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout(deadline, self.stream.next())
                .await
                .expect("SSE data within the deadline");
            match chunk {
                Some(Ok(bytes)) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8 stream")),
                Some(Err(_)) | None => return None,
            }
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".into(),
        id: None,
        data: String::new(),
    };
    let mut has_data = false;
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("data: ") {
            if has_data {
                event.data.push('\n');
            }
            event.data.push_str(v);
            has_data = true;
        } else if let Some(v) = line.strip_prefix("id: ") {
            event.id = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("event: ") {
            event.event = v.to_owned();
        }
    }
    has_data.then_some(event)
}
