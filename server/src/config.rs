//! Every server setting, as clap flags (`chat-server --help`). `Config` derives `clap::Args` so the
//! load generator can flatten it into its own command line and run the same server in a child.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

/// Server settings. `Config::default()` equals the command-line defaults.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the bound address is printed on start).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// How many messages the in-memory log retains; older ones are evicted (and reported as missed).
    #[arg(long, default_value_t = 10_000, value_parser = parse_positive)]
    pub capacity: usize,

    /// Per-socket Socket.IO send queue, in packets. A socket whose queue overflows is counted in
    /// `pushpoll_socket_send_overflows_total` and disconnected so that its client resyncs.
    #[arg(long, default_value_t = 1024, value_parser = parse_positive)]
    pub socket_buffer: usize,

    /// Largest accepted message: HTTP request body size, and name + message bytes for any door.
    #[arg(long, default_value_t = 8192, value_parser = parse_positive)]
    pub max_message_bytes: usize,

    /// Upper bound for a long poll's `wait=` (longer requests are capped to this).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub max_wait: Duration,

    /// Comment line sent on idle SSE streams so proxies keep them open.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub sse_keepalive: Duration,

    /// Engine.IO ping interval (server to client heartbeat).
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// Engine.IO ping timeout (a client silent this long after a ping is dropped).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub ping_timeout: Duration,

    /// After a shutdown signal, how long to wait for open connections before returning anyway.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Folder holding `node_modules/socket.io-client` (served as `/socket.io/socket.io.js`).
    /// Default: `./web`, then the `web/` folder of the source tree this binary was built from.
    #[arg(long)]
    pub web_dir: Option<PathBuf>,

    /// At most this many WARN lines a second about malformed Socket.IO `message` events (per
    /// server); the rest are summed up in one "suppressed K" line. 0: none (still counted in
    /// `pushpoll_socket_events_rejected_total`).
    #[arg(long, default_value_t = 10)]
    pub malformed_log_per_sec: u32,

    /// A socket that sends more malformed `message` events than this within one second is
    /// disconnected (`pushpoll_socket_malformed_disconnects_total`). 0: never.
    #[arg(long, default_value_t = 100)]
    pub max_malformed_per_sec: u32,

    /// Bytes of one SSE stream that may wait in its connection for a client that does not read
    /// (1024 to 49152: below the 64 KiB hyper buffers per HTTP/1 connection, past which it stops
    /// pulling the stream, which could then never end itself). The stream waits while that
    /// much is queued; one whose queued bytes see
    /// no progress for a whole --sse-keepalive is ended (`pushpoll_sse_streams_dropped_total`).
    #[arg(long, default_value_t = 32_768, value_parser = parse_sse_buffer)]
    pub sse_max_buffered: usize,

    /// A request's headers must be complete this long after its first byte, or the connection
    /// is closed (slow headers, "slowloris"). HTTP/1.1 only; 0s turns it off.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// A request's body must be complete this long after its headers, or reading it fails
    /// (`POST /messages` answers `408` and closes the connection). 0s turns it off.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// A connection with no request in progress this long (since it was accepted or its last
    /// answer ended) is closed. Long polls, SSE streams and engine.io polls are requests in
    /// progress; WebSockets are left to the Engine.IO heartbeat. 0s turns it off.
    #[arg(long, default_value = "75s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// TCP keepalive on accepted connections: first probe after this long without traffic,
    /// then every 10 s, 5 probes before the kernel drops a dead peer. 0s turns it off.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub tcp_keepalive: Duration,

    /// Connections served at once (WebSockets included). Beyond it, 64 more get `503` with
    /// `Retry-After` (`/healthz` and `/metrics` still answer there); further ones are closed at
    /// once. Lowered at start to fit the open-files limit.
    #[arg(long, default_value_t = 16_000, value_parser = parse_positive)]
    pub max_connections: usize,

    /// Concurrent requests (streams) per HTTP/2 connection; more are refused by the protocol.
    #[arg(long, default_value_t = 32, value_parser = parse_positive_u32)]
    pub http2_max_streams: u32,

    /// Keep the message log in Redis (`redis://HOST:PORT[/DB]`) so that several nodes serve one
    /// chat: ids, history and every door shared. Without it the log lives in this process only.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,

    /// Prefix of the Redis keys (`PREFIX:log`, the stream; `PREFIX:next-id`, the id counter):
    /// nodes with the same prefix on the same Redis serve the same chat.
    #[arg(long, default_value = "pushpoll", value_name = "PREFIX")]
    pub redis_key: String,

    /// Serve HTTPS/WSS: the certificate chain (PEM, leaf first). Needs `--tls-key`. Bytes in
    /// `/metrics` are then TLS records (handshakes included).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Worker threads of the server's runtime [default: one per core]. With the load generator
    /// on the same machine, `--threads 1` keeps the server to one core as a Node.js server is,
    /// so a broadcast burst cannot take the generator's core as well (see the README).
    #[arg(long, value_parser = parse_positive)]
    pub threads: Option<usize>,
}

impl Default for Config {
    fn default() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        Defaults::try_parse_from(["chat-server"])
            .expect("the flag defaults of Config parse")
            .config
    }
}

fn parse_positive_u32(text: &str) -> Result<u32, String> {
    parse_positive(text).and_then(|n| u32::try_from(n).map_err(|_| format!("at most {}", u32::MAX)))
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// Above ~400 KB hyper stops pulling from a body it cannot write, and a stream that is not pulled
/// cannot end itself, so the limit must stay well below that.
/// HTTP/1 read buffer per connection (request headers larger than this get `431`), also the bytes
/// hyper queues per HTTP/1 connection before it stops pulling a response body. Defined here, with
/// the settings it bounds, and applied by `limits`.
pub const H1_MAX_BUF: usize = 64 * 1024;

/// The most `--sse-max-buffered` may be: three quarters of [`H1_MAX_BUF`].
pub const SSE_MAX_BUFFERED_LIMIT: usize = H1_MAX_BUF / 4 * 3;

fn parse_sse_buffer(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1024..=SSE_MAX_BUFFERED_LIMIT).contains(&n) => Ok(n),
        Ok(n) => Err(format!(
            "{n} is not between 1024 and {SSE_MAX_BUFFERED_LIMIT} bytes"
        )),
        Err(e) => Err(format!("not a whole number of bytes: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_values() {
        let config = Config::default();
        assert_eq!(config.addr, "127.0.0.1:3000".parse().expect("valid addr"));
        assert_eq!(config.capacity, 10_000);
        assert_eq!(config.max_message_bytes, 8192);
        assert_eq!(config.max_wait, Duration::from_secs(60));
        assert!(config.web_dir.is_none());
        assert_eq!(config.malformed_log_per_sec, 10);
        assert_eq!(config.max_malformed_per_sec, 100);
        assert_eq!(config.sse_max_buffered, 32 * 1024);
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.body_timeout, Duration::from_secs(30));
        assert_eq!(config.idle_timeout, Duration::from_secs(75));
        assert_eq!(config.tcp_keepalive, Duration::from_secs(60));
        assert_eq!(config.max_connections, 16_000);
        assert_eq!(config.http2_max_streams, 32);
        assert_eq!(config.redis, None);
        assert_eq!(config.redis_key, "pushpoll");
        assert_eq!(config.threads, None);
    }

    #[test]
    fn zero_capacity_is_rejected() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let err = Cli::try_parse_from(["x", "--capacity", "0"]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("at least 1")));
        let err = Cli::try_parse_from(["x", "--threads", "0"]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("at least 1")));
        let err = Cli::try_parse_from(["x", "--sse-max-buffered", "1000000"]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("between 1024 and 49152")));
    }
}
