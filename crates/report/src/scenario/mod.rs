//! What one run measures: the validated scenario (shared by every strategy of a sweep)
//! and the strategy spec (`poll@1s`, `longpoll`, `sse`, `socketio`, `socketio-polling`).

pub mod access;
pub mod safety;

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The delivery strategy a receiver uses: the one seam of the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
#[value(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// `GET /messages?since=cursor` every interval.
    Poll,
    /// `GET /messages?since=cursor&wait=…` in a loop.
    Longpoll,
    /// One `GET /events` Server-Sent Events stream.
    Sse,
    /// Socket.IO over WebSocket.
    Socketio,
    /// Socket.IO over engine.io HTTP long-polling only.
    SocketioPolling,
}

impl StrategyKind {
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Poll => "poll",
            StrategyKind::Longpoll => "longpoll",
            StrategyKind::Sse => "sse",
            StrategyKind::Socketio => "socketio",
            StrategyKind::SocketioPolling => "socketio-polling",
        }
    }

    /// Push strategies deliver as soon as the server has the message; polling waits for a tick.
    pub fn is_push(self) -> bool {
        !matches!(self, StrategyKind::Poll)
    }
}

impl fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a `poll` receiver asks for news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PollMode {
    /// `GET /messages?since=ID`: only what is new.
    #[default]
    Cursor,
    /// `GET /messages`: the whole list, diffed client-side, as the tutorial's page does.
    Full,
}

/// One strategy with its parameters, as written on the command line: `poll@1s`, `longpoll`,
/// `longpoll@30s` (wait), `sse`, `socketio`, `socketio-polling`. Poll options
/// (`--poll-mode`, `--etag`) are applied by the caller after parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategySpec {
    pub kind: StrategyKind,
    /// Polling interval T (poll only).
    #[serde(with = "duration_ms_opt", rename = "interval_ms")]
    pub interval: Option<Duration>,
    /// Poll mode (poll only).
    pub poll_mode: PollMode,
    /// Send `If-None-Match` with the last ETag (poll only).
    pub etag: bool,
    /// Long-poll wait asked of the server (longpoll only).
    #[serde(with = "duration_ms_opt", rename = "wait_ms")]
    pub wait: Option<Duration>,
}

/// Default long-poll wait: below common proxy idle time-outs, as real long-poll clients use.
pub const DEFAULT_LONGPOLL_WAIT: Duration = Duration::from_secs(25);
/// Default poll interval when `poll` is named without one.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl StrategySpec {
    pub fn new(kind: StrategyKind) -> Self {
        StrategySpec {
            kind,
            interval: (kind == StrategyKind::Poll).then_some(DEFAULT_POLL_INTERVAL),
            poll_mode: PollMode::Cursor,
            etag: false,
            wait: (kind == StrategyKind::Longpoll).then_some(DEFAULT_LONGPOLL_WAIT),
        }
    }

    /// The label used in tables and file names: `poll@1s`, `poll-full@500ms`, `sse`.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for StrategySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            StrategyKind::Poll => {
                f.write_str("poll")?;
                if self.poll_mode == PollMode::Full {
                    f.write_str("-full")?;
                }
                if self.etag {
                    f.write_str("-etag")?;
                }
                if let Some(t) = self.interval {
                    write!(f, "@{}", format_duration(t))?;
                }
                Ok(())
            }
            StrategyKind::Longpoll => match self.wait {
                Some(w) if w != DEFAULT_LONGPOLL_WAIT => {
                    write!(f, "longpoll@{}", format_duration(w))
                }
                _ => f.write_str("longpoll"),
            },
            kind => f.write_str(kind.name()),
        }
    }
}

/// Why a strategy spec was refused; names the offending text.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error(
        "unknown strategy `{0}`: expected poll[@INTERVAL], poll-full[@INTERVAL], poll-etag[@INTERVAL], longpoll[@WAIT], sse, socketio or socketio-polling"
    )]
    UnknownStrategy(String),
    #[error("bad duration `{text}` in `{spec}`: {reason} (examples: 250ms, 1s, 2.5s, 1m)")]
    BadDuration {
        spec: String,
        text: String,
        reason: String,
    },
    #[error("`{0}` takes no @ parameter")]
    NoParameter(String),
    #[error("duration in `{0}` must be greater than zero")]
    ZeroDuration(String),
}

impl FromStr for StrategySpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, param) = match s.split_once('@') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let duration = |p: &str| -> Result<Duration, SpecError> {
            let d = parse_duration(p).map_err(|reason| SpecError::BadDuration {
                spec: s.to_string(),
                text: p.to_string(),
                reason,
            })?;
            if d.is_zero() {
                return Err(SpecError::ZeroDuration(s.to_string()));
            }
            Ok(d)
        };
        let mut spec = match name {
            "poll" | "poll-full" | "poll-etag" | "poll-full-etag" => {
                let mut spec = StrategySpec::new(StrategyKind::Poll);
                spec.poll_mode = if name.contains("full") {
                    PollMode::Full
                } else {
                    PollMode::Cursor
                };
                spec.etag = name.contains("etag");
                spec
            }
            "longpoll" | "long-poll" => StrategySpec::new(StrategyKind::Longpoll),
            "sse" => StrategySpec::new(StrategyKind::Sse),
            "socketio" | "socket.io" | "websocket" => StrategySpec::new(StrategyKind::Socketio),
            "socketio-polling" | "socket.io-polling" => {
                StrategySpec::new(StrategyKind::SocketioPolling)
            }
            _ => return Err(SpecError::UnknownStrategy(s.to_string())),
        };
        if let Some(p) = param {
            match spec.kind {
                StrategyKind::Poll => spec.interval = Some(duration(p)?),
                StrategyKind::Longpoll => spec.wait = Some(duration(p)?),
                _ => return Err(SpecError::NoParameter(s.to_string())),
            }
        }
        Ok(spec)
    }
}

/// Parse a human duration (`250ms`, `1s`, `2.5s`, `1m`, `1m30s`); a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err("must be a non-negative number of seconds".into());
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    // humantime has no fractional units ("2.5s"); handle the common decimal-seconds case.
    if let Some(num) = text.strip_suffix('s').filter(|n| !n.ends_with('m'))
        && let Ok(secs) = num.parse::<f64>()
    {
        if !secs.is_finite() || secs < 0.0 {
            return Err("must be non-negative".into());
        }
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// Short human form for labels: `100ms`, `1s`, `2.5s`, `1m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{}ms", trim_float(ms))
    } else if ms < 60_000.0 || !d.as_millis().is_multiple_of(60_000) {
        format!("{}s", trim_float(ms / 1000.0))
    } else {
        format!("{}m", d.as_millis() / 60_000)
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// When the senders' messages are intended to go out (both open loop: a slow answer never delays
/// the next message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arrivals {
    /// Evenly spaced: one message every 1/rate in aggregate. Empty polls ≈ max(0, 1 − λT).
    #[default]
    Even,
    /// A Poisson process (exponential gaps, seeded by `--seed`), like independent people
    /// chatting. Empty polls ≈ e^(−λT).
    Poisson,
}

/// The load all strategies of a run or sweep share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Receivers (simulated browsers), each with its own connection(s).
    pub clients: NonZeroUsize,
    /// Sender clients posting probes.
    pub senders: NonZeroUsize,
    /// Aggregate probe messages per second over all senders (open loop).
    pub rate: f64,
    /// Evenly spaced or Poisson send times (older results files have none: even).
    #[serde(default)]
    pub arrivals: Arrivals,
    /// Probe message text padded to at least this many bytes.
    pub payload_bytes: usize,
    /// Measured phase.
    #[serde(with = "duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// Warm-up before measuring (sent and delivered, not recorded).
    #[serde(with = "duration_ms", rename = "warmup_ms")]
    pub warmup: Duration,
    /// Longest wait for stragglers after the last measured send.
    #[serde(with = "duration_ms", rename = "drain_ms")]
    pub drain: Duration,
    /// Receivers connected per second during the connect phase.
    pub connect_rate: f64,
    /// `None`: start the project's chat server as a child process; `Some(url)`: measure that server.
    pub target: Option<String>,
    /// Accept a `target` that is not a loopback address.
    #[serde(default)]
    pub allow_remote: bool,
    /// Seed for the random poll phases, so two runs of a sweep get the same phases.
    pub seed: u64,
    /// TLS trust, headers, login (issue 15); secrets are never serialized.
    #[serde(default)]
    pub access: access::AccessSpec,
    /// The request-rate ceiling and the 429/5xx abort threshold (issue 15).
    #[serde(default)]
    pub safety: safety::SafetySpec,
}

/// The highest `--rate` a run accepts, messages per second over all senders: the generator's
/// probe table holds one slot per planned probe.
pub const MAX_RATE: f64 = 100_000.0;

/// A scenario whose numbers make no sense; names the flag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidScenario {
    #[error("--{flag} must be a positive number, got {value}")]
    NotPositive { flag: &'static str, value: f64 },
    #[error("--rate must be a positive number of messages per second, at most {MAX_RATE}, got {0}")]
    RateAboveMax(f64),
    #[error("--{flag} must be longer than zero")]
    ZeroDuration { flag: &'static str },
}

impl Scenario {
    /// The scenario's own numbers, checked in one place: by the command line as it builds a
    /// scenario and by the engine before it runs one (a scenario built in code comes that way).
    pub fn check(&self) -> Result<(), InvalidScenario> {
        for (flag, value) in [("rate", self.rate), ("connect-rate", self.connect_rate)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(InvalidScenario::NotPositive { flag, value });
            }
        }
        if self.rate > MAX_RATE {
            return Err(InvalidScenario::RateAboveMax(self.rate));
        }
        if self.duration.is_zero() {
            return Err(InvalidScenario::ZeroDuration { flag: "duration" });
        }
        Ok(())
    }
}

/// Serde helpers: durations as integer milliseconds in JSON.
pub mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        if !ms.is_finite() || ms < 0.0 {
            return Err(serde::de::Error::custom("duration must be non-negative"));
        }
        Ok(Duration::from_secs_f64(ms / 1000.0))
    }
}

/// Serde helpers: optional durations as integer milliseconds in JSON.
pub mod duration_ms_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(ms) if ms.is_finite() && ms >= 0.0 => {
                Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
            }
            Some(_) => Err(serde::de::Error::custom("duration must be non-negative")),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_strategy_and_round_trips_the_label() {
        for text in [
            "poll@100ms",
            "poll@1s",
            "poll@2.5s",
            "poll-full@500ms",
            "poll-etag@1s",
            "longpoll",
            "longpoll@10s",
            "sse",
            "socketio",
            "socketio-polling",
        ] {
            let spec: StrategySpec = text.parse().expect(text);
            assert_eq!(spec.label(), text);
        }
        let p: StrategySpec = "poll@250ms".parse().expect("poll");
        assert_eq!(p.interval, Some(Duration::from_millis(250)));
        assert_eq!(
            "poll".parse::<StrategySpec>().expect("poll").interval,
            Some(DEFAULT_POLL_INTERVAL)
        );
    }

    #[test]
    fn rejects_bad_specs_with_the_offending_text() {
        let err = "pol@1s".parse::<StrategySpec>().unwrap_err();
        assert!(err.to_string().contains("pol@1s"), "{err}");
        assert!(matches!(
            "poll@soon".parse::<StrategySpec>(),
            Err(SpecError::BadDuration { .. })
        ));
        assert!(matches!(
            "poll@0s".parse::<StrategySpec>(),
            Err(SpecError::ZeroDuration(_))
        ));
        assert!(matches!(
            "sse@1s".parse::<StrategySpec>(),
            Err(SpecError::NoParameter(_))
        ));
    }

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("30ms"), Ok(Duration::from_millis(30)));
        assert!(parse_duration("-1").is_err());
        assert_eq!(format_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
