//! Raw HTTP/1.1 over a `TcpStream`, for tests that must behave like no well-mannered client
//! would: stop reading, stall mid-headers, announce a body and never send it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};

/// A parsed response head and body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// A connection whose receive buffer is as small as the kernel allows, so that what the server
/// sends and this side does not read stays with the server.
pub async fn connect_small_window(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("connect")
}

pub async fn send(stream: &mut TcpStream, request: &str) {
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
}

/// Reads one response (body by `Content-Length`, none for `HEAD`), or None if the connection
/// closed or `within` passed first.
pub async fn read_response(
    stream: &mut TcpStream,
    head_request: bool,
    within: Duration,
) -> Option<RawResponse> {
    let end = Instant::now() + within;
    let mut buf = Vec::new();
    let head_len = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_more(stream, &mut buf, end).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut response = RawResponse {
        status,
        headers,
        body: buf.split_off(head_len),
    };
    let length: usize = match response.header("content-length") {
        Some(v) if !head_request => v.parse().ok()?,
        _ => 0,
    };
    while response.body.len() < length {
        read_more(stream, &mut response.body, end).await?;
    }
    Some(response)
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, end: Instant) -> Option<()> {
    let mut chunk = vec![0u8; 64 * 1024];
    let n = timeout(
        end.saturating_duration_since(Instant::now()),
        stream.read(&mut chunk),
    )
    .await
    .ok()?
    .ok()?;
    (n > 0).then(|| buf.extend_from_slice(&chunk[..n]))
}

/// Waits (at most `within`) for the server to close the connection; returns the bytes that came
/// before the close, or None if the connection was still open when `within` passed. A reset
/// counts as closed.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let end = Instant::now() + within;
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    // Bounded by `within`; each read returns data, end of stream, an error or the timeout.
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&chunk[..n]),
        }
    }
}
