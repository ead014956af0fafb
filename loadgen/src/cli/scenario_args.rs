//! The flags every command that runs a load shares (`run`, `compare`, `capacity`), and the one
//! place they become a validated [`Scenario`].

use std::num::NonZeroUsize;
use std::time::Duration;

use clap::{Args, Parser};

use crate::scenario::{Arrivals, InvalidScenario, Scenario, parse_duration};

/// The load every strategy of a run or sweep shares.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// Receivers (simulated browsers), each with its own connection(s).
    #[arg(long, default_value = "1000")]
    pub clients: NonZeroUsize,
    /// Sender clients posting probe messages.
    #[arg(long, default_value = "4")]
    pub senders: NonZeroUsize,
    /// Aggregate probe messages per second over all senders (open loop).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Send times: `even` (one message every 1/rate) or `poisson` (random exponential gaps,
    /// seeded by --seed, like independent people chatting).
    #[arg(long, value_enum, default_value_t = Arrivals::Even)]
    pub arrivals: Arrivals,
    /// Pad each probe message to at least this many bytes.
    #[arg(long, default_value_t = 0)]
    pub payload_bytes: usize,
    /// Length of the measured phase (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring: messages flow but are not recorded.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Longest wait for late deliveries after the last measured send.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Receivers connected per second during the connect phase.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Measure this server (http://HOST:PORT) instead of starting the project's chat server;
    /// several nodes of one chat as URL1,URL2,… (clients spread over them round-robin).
    #[arg(long)]
    pub target: Option<String>,
    /// Allow a --target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Seed of the random poll phases and Poisson send times (same seed, same schedule).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub access: crate::access::AccessArgs,
    #[command(flatten)]
    pub safety: crate::safety::SafetyArgs,
}

/// A flag combination that makes no sense; names the flag.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScenarioError {
    #[error(transparent)]
    Invalid(#[from] InvalidScenario),
    #[error("--{flag} must be longer than zero")]
    ZeroDuration { flag: &'static str },
    #[error("--{flag} only applies to --strategy poll (got {strategy})")]
    PollOnly {
        flag: &'static str,
        strategy: String,
    },
    #[error("--wait only applies to --strategy longpoll (got {strategy})")]
    LongpollOnly { strategy: String },
    #[error(transparent)]
    Access(#[from] crate::access::AccessArgsError),
    #[error(transparent)]
    Safety(#[from] crate::safety::SafetyError),
}

impl ScenarioArgs {
    /// The one place a scenario is built from flags: every default is the clap definition's,
    /// and [`Scenario::check`] judges the numbers.
    pub fn to_scenario(&self) -> Result<Scenario, ScenarioError> {
        let scenario = Scenario {
            clients: self.clients,
            senders: self.senders,
            rate: self.rate,
            arrivals: self.arrivals,
            payload_bytes: self.payload_bytes,
            duration: self.duration,
            warmup: self.warmup,
            drain: self.drain,
            connect_rate: self.connect_rate,
            target: self.target.clone(),
            allow_remote: self.allow_remote,
            seed: self.seed,
            access: self.access.to_spec()?,
            safety: self.safety.to_spec()?,
        };
        scenario.check()?;
        Ok(scenario)
    }
}

/// The scenario of `loadgen run` with no flags: the defaults of the clap definitions above.
pub fn default_scenario() -> Scenario {
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        scenario: ScenarioArgs,
    }
    Defaults::parse_from(["loadgen"])
        .scenario
        .to_scenario()
        .expect("the default flags make a valid scenario")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_flags() {
        let s = default_scenario();
        assert_eq!(s.clients.get(), 1000);
        assert_eq!(s.senders.get(), 4);
        assert_eq!(s.rate, 10.0);
        assert_eq!(s.duration, Duration::from_secs(30));
        assert_eq!(s.target, None);
    }

    #[test]
    fn the_numbers_are_checked_where_the_scenario_is_built() {
        let mut s = default_scenario();
        s.rate = 1e9;
        assert_eq!(s.check(), Err(InvalidScenario::RateAboveMax(1e9)));
        s.rate = 10.0;
        s.duration = Duration::ZERO;
        assert!(s.check().unwrap_err().to_string().contains("--duration"));
    }
}
