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
    /// (1024 to 262144). The stream waits while that much is queued; one whose queued bytes see
    /// no progress for a whole --sse-keepalive is ended (`pushpoll_sse_streams_dropped_total`).
    #[arg(long, default_value_t = 131_072, value_parser = parse_sse_buffer)]
    pub sse_max_buffered: usize,
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

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// Above ~400 KB hyper stops pulling from a body it cannot write, and a stream that is not pulled
/// cannot end itself, so the limit must stay well below that.
fn parse_sse_buffer(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1024..=262_144).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is not between 1024 and 262144 bytes")),
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
        assert_eq!(config.sse_max_buffered, 128 * 1024);
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
        let err = Cli::try_parse_from(["x", "--sse-max-buffered", "1000000"]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("between 1024 and 262144")));
    }
}
