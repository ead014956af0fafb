//! One keep-alive HTTP/1.1 connection per simulated client (as a browser tab would hold),
//! reopened when the server closes it, with every byte counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::CountingStream;
use crate::access::ClientAccess;
use crate::counters::{ErrorKind, WireCounters};
use pushpoll_wire::headers::LATEST_ID_HEADER;

/// Read buffer of a client's HTTP connection.
const READ_BUFFER_BYTES: usize = 4096;
/// Deadline for opening a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server under test listens, and the `Host` header naming it.
#[derive(Debug, Clone)]
pub struct TargetAddr {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    /// Local address every connection is opened from (`--source-ip`); `None`: the OS picks.
    pub source: Option<std::net::IpAddr>,
    /// TLS, extra headers, the login cookie, the Socket.IO auth payload (default: none).
    pub access: Arc<ClientAccess>,
    /// The target's routes and event names (`--profile`; default: the project's server).
    pub profile: Arc<crate::profile::Profile>,
}

impl TargetAddr {
    pub fn new(addr: SocketAddr, host: &str) -> Result<Self, HttpError> {
        let host = HeaderValue::from_str(host).map_err(|_| HttpError::BadHost(host.to_string()))?;
        Ok(TargetAddr {
            addr,
            host,
            source: None,
            access: Arc::default(),
            profile: crate::profile::PUSHPOLL.clone(),
        })
    }

    /// Opens every connection from `source` (its own ephemeral ports).
    pub fn with_source(self, source: Option<std::net::IpAddr>) -> Self {
        TargetAddr { source, ..self }
    }

    /// The target's profile unless it is the project's server (whose doors the strategies'
    /// original code serves, byte for byte).
    pub fn custom_profile(&self) -> Option<&crate::profile::Profile> {
        (!Arc::ptr_eq(&self.profile, &crate::profile::PUSHPOLL)).then_some(&*self.profile)
    }

    /// The same target, spoken to as `profile` says.
    pub fn with_profile(self, profile: Arc<crate::profile::Profile>) -> Self {
        TargetAddr { profile, ..self }
    }

    /// The same target, reached with `access`.
    pub fn with_access(self, access: ClientAccess) -> Self {
        TargetAddr {
            access: Arc::new(access),
            ..self
        }
    }

    /// A request builder for `path` with the `Host` header and every `--header` set.
    pub fn request(&self, method: Method, path: &str) -> http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone());
        if let Some(headers) = b.headers_mut() {
            self.access.add_headers(headers);
        }
        b
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] http::Error),
    #[error("`{0}` is not a valid Host header")]
    BadHost(String),
    #[error("unexpected HTTP status {0}")]
    Status(http::StatusCode),
    /// `error` is not a `source`: the message already says it (a chain would repeat it).
    #[error("TLS handshake with {host} failed: {error}{}", tls_hint(error))]
    Tls { host: String, error: std::io::Error },
    #[error("an answer larger than {} MiB (the most one answer may hold)", MAX_BODY_BYTES >> 20)]
    TooLarge,
}

/// The most one HTTP answer may hold: a poll answer is parsed whole, so an endless or enormous
/// body must end in an error, not in all of memory. The chat server's whole default history
/// (10,000 messages) is a few MB; 10,000 messages at its 8 KiB maximum are 80 MB, beyond this:
/// poll such a server with cursors (`GET /messages?since=`), not the whole list.
pub const MAX_BODY_BYTES: usize = 64 << 20;

impl HttpError {
    /// The counter this error adds to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::Connect { .. } | HttpError::Tls { .. } => ErrorKind::Connect,
            HttpError::Timeout(_) => ErrorKind::Timeout,
            HttpError::Http(e) if e.is_incomplete_message() || e.is_canceled() => ErrorKind::Closed,
            HttpError::Http(_) => ErrorKind::Io,
            HttpError::Request(_) | HttpError::BadHost(_) => ErrorKind::Protocol,
            HttpError::Status(_) => ErrorKind::HttpStatus,
            HttpError::TooLarge => ErrorKind::Protocol,
        }
    }
}

/// What a certificate failure needs said: how to trust the server.
fn tls_hint(e: &std::io::Error) -> &'static str {
    if e.to_string().contains("certificate") {
        " (the server's certificate is not trusted: pass --ca-cert FILE with the CA that signed it)"
    } else {
        ""
    }
}

/// A client connection: TLS or plain over a counted TCP stream (TLS records are what is counted).
pub type ClientStream = pushpoll_wire::tls::MaybeTls<CountingStream<TcpStream>>;

/// Opens a connection to `target` counted in `wire`: TCP with `TCP_NODELAY` (as the server sets
/// on its side), then the TLS handshake for an https target (its bytes counted, inside the
/// connect timeout: it is setup cost).
pub async fn connect_tcp(
    target: &TargetAddr,
    wire: &Arc<WireCounters>,
) -> Result<ClientStream, HttpError> {
    let tcp = connect_counted(target, wire).await?;
    let Some(tls) = &target.access.tls else {
        return Ok(ClientStream::Plain(tcp));
    };
    let host = || {
        target
            .host
            .to_str()
            .map_or_else(|_| target.addr.to_string(), str::to_string)
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(tcp))
        .await
        .map_err(|_| HttpError::Timeout(CONNECT_TIMEOUT))?
        .map_err(|error| HttpError::Tls {
            host: host(),
            error,
        })?;
    Ok(ClientStream::Tls(Box::new(
        tokio_rustls::TlsStream::Client(stream),
    )))
}

async fn connect_counted(
    target: &TargetAddr,
    wire: &Arc<WireCounters>,
) -> Result<CountingStream<TcpStream>, HttpError> {
    let connect = connect_from(target.addr, target.source);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| HttpError::Timeout(CONNECT_TIMEOUT))?
        .map_err(|source| HttpError::Connect {
            addr: target.addr,
            source,
        })?;
    stream
        .set_nodelay(true)
        .map_err(|source| HttpError::Connect {
            addr: target.addr,
            source,
        })?;
    wire.connections.fetch_add(1, Relaxed);
    if let Some(parent) = &wire.parent {
        parent.connections.fetch_add(1, Relaxed);
    }
    Ok(CountingStream::new(stream, wire.clone()))
}

/// Connects to `addr`, from `source` when given (bound to it, any port).
async fn connect_from(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(addr).await
}

/// A client's HTTP/1.1 connection; requests go one at a time, as on a browser's connection.
pub struct HttpConn {
    target: Arc<TargetAddr>,
    wire: Arc<WireCounters>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpConn {
    pub fn new(target: Arc<TargetAddr>, wire: Arc<WireCounters>) -> Self {
        HttpConn {
            target,
            wire,
            sender: None,
        }
    }

    pub fn target(&self) -> &TargetAddr {
        &self.target
    }

    /// Opens the connection now (the connect phase), instead of on the first request.
    pub async fn open(&mut self) -> Result<(), HttpError> {
        self.ready().await.map(|_| ())
    }

    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, HttpError> {
        let reusable = match self.sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let io = TokioIo::new(connect_tcp(&self.target, &self.wire).await?);
            // Exact-size reads keep an idle client's buffer small (hyper's adaptive strategy
            // starts at 8 KiB and grows); larger answers simply take several reads.
            let (sender, conn) = http1::Builder::new()
                .read_buf_exact_size(Some(READ_BUFFER_BYTES))
                .handshake(io)
                .await?;
            // The connection task ends when the socket closes; its error, if any, is the one the
            // pending or next request reports, so it is counted there.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("sender was just set"))
    }

    /// Sends a request, reconnecting if the server closed the idle connection. `build` is
    /// called again for the one retry a closed keep-alive connection gets (only if
    /// `idempotent`, as browsers do).
    pub async fn send(
        &mut self,
        build: impl Fn(&TargetAddr) -> Result<Request<Full<Bytes>>, http::Error>,
        idempotent: bool,
        timeout: Duration,
    ) -> Result<Response<Incoming>, HttpError> {
        let target = self.target.clone();
        let attempt = async {
            let first = self.send_once(build(&target)?).await;
            match first {
                Err(HttpError::Http(e))
                    if idempotent && (e.is_canceled() || e.is_incomplete_message()) =>
                {
                    self.sender = None;
                    self.send_once(build(&target)?).await
                }
                other => other,
            }
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    async fn send_once(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, HttpError> {
        let sender = self.ready().await?;
        let result = sender.send_request(req).await;
        match &result {
            Ok(resp) => self.target.access.guard.observe(resp.status()),
            Err(_) => self.sender = None,
        }
        Ok(result?)
    }

    /// `GET path` and its whole body; any status but 200 is an error. The timeout covers the
    /// request and, separately, the body.
    pub async fn get_ok(&mut self, path: &str, timeout: Duration) -> Result<Bytes, HttpError> {
        self.get_list(path, timeout).await.map(|a| a.body)
    }

    /// [`HttpConn::get_ok`] for a message list: the body, and the server's latest id when it
    /// says the cursor was ahead of its log (`X-Pushpoll-Latest-Id`, e.g. after a restart).
    pub async fn get_list(
        &mut self,
        path: &str,
        timeout: Duration,
    ) -> Result<ListAnswer, HttpError> {
        let build = |t: &TargetAddr| t.request(Method::GET, path).body(Full::default());
        let resp = self.send(build, true, timeout).await?;
        let latest_id = latest_id_header(resp.headers());
        match resp.status() {
            http::StatusCode::OK => Ok(ListAnswer {
                body: collect_body(resp, timeout).await?,
                latest_id,
            }),
            status => {
                // Read the body anyway so the keep-alive connection stays usable.
                collect_body(resp, timeout).await?;
                Err(HttpError::Status(status))
            }
        }
    }

    /// Drops the connection (the next request opens a new one).
    pub fn close(&mut self) {
        self.sender = None;
    }
}

/// A message list answer.
#[derive(Debug, Clone)]
pub struct ListAnswer {
    pub body: Bytes,
    /// `X-Pushpoll-Latest-Id`: the cursor sent was ahead of the server's log.
    pub latest_id: Option<u64>,
}

/// The value of the chat server's [`LATEST_ID_HEADER`] (a cursor ahead of its log: its ids started
/// again), if present and a number.
pub fn latest_id_header(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(LATEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads a whole response body, at most [`MAX_BODY_BYTES`] of it.
pub async fn collect_body(resp: Response<Incoming>, timeout: Duration) -> Result<Bytes, HttpError> {
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY_BYTES).collect();
    let collected = tokio::time::timeout(timeout, body)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?;
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => match e.downcast::<hyper::Error>() {
            Ok(e) => Err(HttpError::Http(*e)),
            // `Limited`'s only other error: the body went over the limit.
            Err(_) => Err(HttpError::TooLarge),
        },
    }
}
