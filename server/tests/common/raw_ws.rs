//! A WebSocket client written by hand over a raw TCP stream, for the frames a well-behaved library
//! refuses to send: a header announcing more bytes than follow, and fragmented messages that never
//! finish. Frames are masked with an all-zero key, so payloads go out unchanged.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::DEADLINE;

pub const TEXT: u8 = 0x1;
pub const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// How a connection ended, as seen by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A close frame; `None` when it carried no status code (the peer sees 1005).
    Close(Option<u16>),
    /// The TCP stream ended (EOF) without a close frame.
    Eof,
    /// Reading failed (typically a reset: the server closed with our bytes unread).
    Error(String),
}

/// One Engine.IO v4 / Socket.IO v5 session over a raw WebSocket.
pub struct RawWs {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// A frame received from the server.
#[derive(Debug)]
pub enum Frame {
    Text(String),
    Closed(Ending),
}

impl RawWs {
    /// Upgrades `/socket.io/?EIO=4&transport=websocket`; the open packet is left unread.
    pub async fn connect(addr: SocketAddr) -> RawWs {
        let mut stream = TcpStream::connect(addr).await.expect("TCP connect");
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the upgrade request");
        let mut ws = RawWs {
            stream,
            buffer: Vec::new(),
        };
        let head_end = loop {
            if let Some(end) = ws.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            assert!(ws.buffer.len() < 16_384, "response head too long");
            assert!(ws.fill().await > 0, "connection closed during the upgrade");
        };
        let head = String::from_utf8_lossy(&ws.buffer[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        ws.buffer.drain(..head_end);
        ws
    }

    /// Connects and joins namespace `/`; returns the client and the open packet's JSON
    /// (`sid`, `pingInterval`, `maxPayload`, …).
    pub async fn join(addr: SocketAddr) -> (RawWs, Value) {
        let mut ws = RawWs::connect(addr).await;
        let open = ws.next_text().await.expect("engine.io open packet");
        let handshake: Value = serde_json::from_str(open.strip_prefix('0').expect("open packet"))
            .expect("open packet JSON");
        ws.send_frame(true, TEXT, b"40")
            .await
            .expect("send the namespace connect");
        let ack = ws.next_text().await.expect("socket.io connect ack");
        assert!(ack.starts_with("40{"), "connect packet: {ack}");
        (ws, handshake)
    }

    /// Reads more bytes into the buffer; 0 at EOF. Panics after [`DEADLINE`].
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = timeout(DEADLINE, self.stream.read(&mut chunk))
            .await
            .expect("the server answers within the deadline")
            .expect("TCP read");
        self.buffer.extend_from_slice(&chunk[..n]);
        n
    }

    /// A complete frame's header length and payload length, once buffered.
    fn buffered_frame(&self) -> Option<(usize, usize)> {
        let b = &self.buffer;
        if b.len() < 2 {
            return None;
        }
        let (header, len) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (4, usize::from(u16::from_be_bytes([b[2], b[3]]))),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (10, usize::try_from(u64::from_be_bytes(n)).expect("fits"))
            }
            126 | 127 => return None,
            n => (2, usize::from(n)),
        };
        (b.len() >= header + len).then_some((header, len))
    }

    /// The next text frame or how the connection ended (answering engine.io pings).
    pub async fn next_frame(&mut self) -> Frame {
        for _ in 0..10_000 {
            if let Some((header, len)) = self.buffered_frame() {
                let opcode = self.buffer[0] & 0x0f;
                let payload: Vec<u8> = self.buffer.drain(..header + len).skip(header).collect();
                match opcode {
                    TEXT => {
                        let text = String::from_utf8(payload).expect("UTF-8 text frame");
                        if text == "2" {
                            // A failed pong shows up as the ending on the next read.
                            self.send_frame(true, TEXT, b"3").await.ok();
                            continue;
                        }
                        return Frame::Text(text);
                    }
                    CLOSE => {
                        let code = (payload.len() >= 2)
                            .then(|| u16::from_be_bytes([payload[0], payload[1]]));
                        return Frame::Closed(Ending::Close(code));
                    }
                    _ => continue,
                }
            }
            let mut chunk = [0u8; 8192];
            let read = timeout(DEADLINE, self.stream.read(&mut chunk))
                .await
                .expect("the server answers or closes within the deadline");
            match read {
                Ok(0) => return Frame::Closed(Ending::Eof),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) => return Frame::Closed(Ending::Error(e.to_string())),
            }
        }
        panic!("no complete frame after 10,000 reads");
    }

    /// The next text frame, None when the connection ended.
    pub async fn next_text(&mut self) -> Option<String> {
        match self.next_frame().await {
            Frame::Text(text) => Some(text),
            Frame::Closed(_) => None,
        }
    }

    /// Reads until the server ends the connection, skipping text frames (bounded in count).
    pub async fn ending(&mut self) -> Ending {
        for _ in 0..10_000 {
            if let Frame::Closed(ending) = self.next_frame().await {
                return ending;
            }
        }
        panic!("the server kept sending for 10,000 frames without closing");
    }

    /// Writes a frame header announcing `len` payload bytes (masked, zero key), no payload.
    pub async fn send_header(&mut self, fin: bool, opcode: u8, len: u64) -> std::io::Result<()> {
        let mut header = Vec::with_capacity(14);
        header.push(if fin { 0x80 } else { 0 } | opcode);
        match len {
            0..=125 => header.push(0x80 | len as u8),
            126..=0xffff => {
                header.push(0x80 | 126);
                header.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                header.push(0x80 | 127);
                header.extend_from_slice(&len.to_be_bytes());
            }
        }
        header.extend_from_slice(&[0, 0, 0, 0]);
        self.write(&header).await
    }

    /// Writes raw bytes (a payload after [`Self::send_header`]), bounded by [`DEADLINE`].
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match timeout(DEADLINE, self.stream.write_all(bytes)).await {
            Ok(written) => written,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the server did not read within the deadline",
            )),
        }
    }

    /// Writes one whole frame.
    pub async fn send_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: &[u8],
    ) -> std::io::Result<()> {
        self.send_header(fin, opcode, payload.len() as u64).await?;
        self.write(payload).await
    }

    /// A WebSocket ping; the server's pong is skipped by [`Self::next_frame`].
    pub async fn ping(&mut self) -> std::io::Result<()> {
        self.send_frame(true, PING, b"").await
    }
}
