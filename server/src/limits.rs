//! Every limit a connection is served under, in one place: the timeouts and connection cap from
//! the command line (`--header-timeout`, `--body-timeout`, `--idle-timeout`, `--tcp-keepalive`,
//! `--max-connections`, `--http2-max-streams`) and the fixed per-connection buffer caps.
//!
//! Why fixed caps: hyper's defaults let one connection buffer 400 KB per HTTP/1 read buffer and
//! 1 MB of receive window plus 400 KB of send buffer per HTTP/2 stream, 200 streams at a time.
//! A chat request is a few KB; these caps keep what a hostile peer can pin per connection small.
//! README "Limits" lists them.

use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto::Builder;

use crate::config::Config;

/// Connections accepted beyond `--max-connections` that still get an answer (`503`, or
/// `/healthz` and `/metrics`); beyond these, connections are closed at once.
pub const RESERVE: usize = 64;
/// File descriptors kept free beside the connections (listener, files, runtime).
pub const SPARE_FILES: u64 = 64;
/// `Retry-After` of a `503` from the reserve, in seconds.
pub const RETRY_AFTER_SECS: u32 = 5;
/// How long a reserve connection may stay open, when `--header-timeout` is off.
pub const RESERVE_LIFETIME: Duration = Duration::from_secs(10);
/// How long an HTTP/2 connection that timed out gets to see its GOAWAY before it is dropped.
pub const GOAWAY_GRACE: Duration = Duration::from_secs(1);

pub use crate::config::H1_MAX_BUF;
/// HTTP/2: request headers larger than this are refused.
pub const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// HTTP/2 receive windows: what a client may send before the server reads it.
pub const H2_STREAM_WINDOW: u32 = 64 * 1024;
pub const H2_CONNECTION_WINDOW: u32 = 256 * 1024;
/// HTTP/2 per-stream send buffer: answer bytes queued for a client that is not reading.
pub const H2_MAX_SEND_BUF: usize = 64 * 1024;

/// The limits of one server, resolved from its [`Config`] (`None`: that timeout is off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Option<Duration>,
    pub body_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub tcp_keepalive: Option<Duration>,
    pub max_connections: usize,
    pub http2_max_streams: u32,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Limits {
            header_timeout: nonzero(config.header_timeout),
            body_timeout: nonzero(config.body_timeout),
            idle_timeout: nonzero(config.idle_timeout),
            tcp_keepalive: nonzero(config.tcp_keepalive),
            max_connections: config.max_connections,
            http2_max_streams: config.http2_max_streams,
        }
    }

    /// hyper's connection builder (HTTP/1.1, and HTTP/2 with prior knowledge) with these limits.
    /// Timeouts are not hyper's: its header timer also runs on idle keep-alive connections and
    /// would cap them at the header timeout; [`crate::connection`] keeps time instead.
    pub fn builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .keep_alive(true)
            .max_buf_size(H1_MAX_BUF)
            .header_read_timeout(None);
        builder
            .http2()
            .max_concurrent_streams(self.http2_max_streams)
            .max_header_list_size(H2_MAX_HEADER_LIST)
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_CONNECTION_WINDOW)
            .max_send_buf_size(H2_MAX_SEND_BUF);
        builder
    }

    /// How long a connection served from the reserve may stay open.
    pub fn reserve_lifetime(&self) -> Duration {
        self.header_timeout.unwrap_or(RESERVE_LIFETIME)
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// `wanted`, lowered so that the connections, the reserve and [`SPARE_FILES`] fit in `open_files`
/// (the soft `RLIMIT_NOFILE`; `None` when unknown). Past the limit, `accept` would fail instead
/// and not even `/healthz` could answer.
pub fn fit_open_files(wanted: usize, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return wanted;
    };
    let room = open_files.saturating_sub(RESERVE as u64 + SPARE_FILES);
    usize::try_from(room).map_or(wanted, |room| wanted.min(room).max(1))
}

/// The process's soft open-files limit, if it can be read.
pub fn open_files_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_a_timeout_off() {
        let config = Config {
            idle_timeout: Duration::ZERO,
            ..Config::default()
        };
        let limits = Limits::new(&config);
        assert_eq!(limits.idle_timeout, None);
        assert_eq!(limits.header_timeout, Some(Duration::from_secs(10)));
        assert_eq!(limits.reserve_lifetime(), Duration::from_secs(10));
    }

    #[test]
    fn max_connections_fits_the_open_files_limit() {
        assert_eq!(fit_open_files(16_000, Some(20_000)), 16_000);
        assert_eq!(fit_open_files(16_000, Some(1024)), 1024 - 128);
        assert_eq!(fit_open_files(16_000, Some(10)), 1);
        assert_eq!(fit_open_files(16_000, None), 16_000);
    }
}
