//! Safe against real servers (issue 15): a ceiling on the requests per second a run against a
//! `--target` may plan (raised only by name, `--max-request-rate`; by default on every target
//! allowed off loopback, and on any target once the flag is given), and a guard that stops the
//! run at once when the target refuses (`429`) or fails (`5xx`) more than `--abort-on-errors`
//! percent of the requests it answered, with the reason in the results.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use clap::Args;
use http::StatusCode;

use tokio_util::sync::CancellationToken;

pub use crate::scenario::safety::{
    DEFAULT_ABORT_ON_ERRORS, DEFAULT_MAX_CONNECT_RATE, DEFAULT_MAX_REQUEST_RATE, SafetySpec,
};
use crate::scenario::{DEFAULT_POLL_INTERVAL, Scenario, StrategyKind, StrategySpec};

/// Refusals needed before the guard may trip (one refused request of the first few is not a
/// trend).
pub const MIN_REFUSALS: u64 = 10;

#[derive(Debug, Clone, Args)]
pub struct SafetyArgs {
    /// Ceiling on the requests per second a run against --target may plan (posts plus the
    /// strategy's own requests: polls, long polls re-armed by every message). Raise it by name.
    /// [default: 2000 with --allow-remote; none for a loopback target]
    #[arg(long, value_name = "PER_SECOND")]
    pub max_request_rate: Option<f64>,
    /// Ceiling on --connect-rate, the connections per second the connect ramp opens. Raise it
    /// by name. [default: 200 with --allow-remote; none for a loopback target]
    #[arg(long, value_name = "PER_SECOND")]
    pub max_connect_rate: Option<f64>,
    /// Stop the run at once when more than this percent of the target's answers are 429 or 5xx
    /// (after at least 10 of them).
    #[arg(long, default_value_t = DEFAULT_ABORT_ON_ERRORS, value_name = "PCT")]
    pub abort_on_errors: f64,
}

impl Default for SafetyArgs {
    fn default() -> Self {
        SafetySpec::default().into()
    }
}

impl From<SafetySpec> for SafetyArgs {
    fn from(s: SafetySpec) -> Self {
        SafetyArgs {
            max_request_rate: s.max_request_rate,
            max_connect_rate: s.max_connect_rate,
            abort_on_errors: s.abort_on_errors_pct,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SafetyError {
    #[error("--{flag} must be a positive number, got {value}")]
    NotPositive { flag: &'static str, value: f64 },
    #[error("--abort-on-errors is a percentage between 0 and 100, got {0}")]
    BadPercent(f64),
    #[error(
        "this run would open {connect_rate:.0} connections/s to --target (--connect-rate), above \
         the ceiling of {ceiling:.0}/s; lower --connect-rate, or if the target can take it, raise \
         --max-connect-rate by name"
    )]
    TooFastRamp { connect_rate: f64, ceiling: f64 },
    #[error(
        "this run would send about {planned:.0} requests/s to --target ({why}), above the \
         ceiling of {ceiling:.0}/s; if the target can take it, raise --max-request-rate by name"
    )]
    TooManyRequests {
        planned: f64,
        ceiling: f64,
        why: String,
    },
}

impl SafetyArgs {
    pub fn to_spec(&self) -> Result<SafetySpec, SafetyError> {
        let rate = self.max_request_rate;
        for (flag, value) in [
            ("max-request-rate", rate),
            ("max-connect-rate", self.max_connect_rate),
        ] {
            if let Some(value) = value.filter(|r| !(r.is_finite() && *r > 0.0)) {
                return Err(SafetyError::NotPositive { flag, value });
            }
        }
        let pct = self.abort_on_errors;
        if !(0.0..=100.0).contains(&pct) {
            return Err(SafetyError::BadPercent(pct));
        }
        Ok(SafetySpec {
            max_request_rate: rate,
            max_connect_rate: self.max_connect_rate,
            abort_on_errors_pct: pct,
        })
    }
}

/// Requests per second `spec` plans under `scenario`, and how that figure is made.
pub fn planned_request_rate(scenario: &Scenario, spec: &StrategySpec) -> (f64, String) {
    let clients = scenario.clients.get() as f64;
    let posts = scenario.rate;
    let (receivers, how) = match spec.kind {
        StrategyKind::Poll => {
            let t = spec.interval.unwrap_or(DEFAULT_POLL_INTERVAL).as_secs_f64();
            (clients / t.max(1e-3), format!("{clients} clients / {t} s"))
        }
        // Every message ends every waiting request, which is asked again at once.
        StrategyKind::Longpoll | StrategyKind::SocketioPolling => (
            clients * posts,
            format!("{clients} clients x {posts} messages/s, each ends a waiting request"),
        ),
        StrategyKind::Sse | StrategyKind::Socketio => (0.0, "push: connects only".to_string()),
    };
    (receivers + posts, format!("{how}, plus {posts} posts/s"))
}

/// Refuses a `--target` run planning more requests per second than its ceiling.
pub fn check_request_rate(scenario: &Scenario, spec: &StrategySpec) -> Result<(), SafetyError> {
    let Some(ceiling) = ceiling(
        scenario,
        scenario.safety.max_request_rate,
        DEFAULT_MAX_REQUEST_RATE,
    ) else {
        return Ok(());
    };
    let (planned, why) = planned_request_rate(scenario, spec);
    if planned > ceiling {
        return Err(SafetyError::TooManyRequests {
            planned,
            ceiling,
            why,
        });
    }
    Ok(())
}

/// Refuses a `--target` run whose connect ramp is faster than its ceiling (by default only
/// once `--allow-remote` lets the target be another machine, as for the request rate).
pub fn check_connect_rate(scenario: &Scenario) -> Result<(), SafetyError> {
    let Some(ceiling) = ceiling(
        scenario,
        scenario.safety.max_connect_rate,
        DEFAULT_MAX_CONNECT_RATE,
    ) else {
        return Ok(());
    };
    if scenario.connect_rate > ceiling {
        return Err(SafetyError::TooFastRamp {
            connect_rate: scenario.connect_rate,
            ceiling,
        });
    }
    Ok(())
}

/// The ceiling that holds for this run: none for the chat server this tool starts for itself
/// (ours to load); one given by name on any target; else `default`, once `--allow-remote` lets
/// the target be a server off this machine.
fn ceiling(scenario: &Scenario, given: Option<f64>, default: f64) -> Option<f64> {
    scenario.target.as_ref()?;
    given.or(scenario.allow_remote.then_some(default))
}

/// Counts the target's answers and trips when too many are `429` or `5xx`.
#[derive(Debug)]
pub struct RefusalGuard {
    pct: f64,
    answers: AtomicU64,
    too_many: AtomicU64,
    server_errors: AtomicU64,
    tripped: CancellationToken,
    reason: OnceLock<String>,
}

impl Default for RefusalGuard {
    fn default() -> Self {
        RefusalGuard::new(DEFAULT_ABORT_ON_ERRORS)
    }
}

impl RefusalGuard {
    pub fn new(pct: f64) -> Self {
        RefusalGuard {
            pct,
            answers: AtomicU64::new(0),
            too_many: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            tripped: CancellationToken::new(),
            reason: OnceLock::new(),
        }
    }

    /// One answer from the target.
    pub fn observe(&self, status: StatusCode) {
        let answers = self.answers.fetch_add(1, Relaxed) + 1;
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.too_many.fetch_add(1, Relaxed);
        } else if status.is_server_error() {
            self.server_errors.fetch_add(1, Relaxed);
        } else {
            return;
        }
        let (too_many, server_errors) = (
            self.too_many.load(Relaxed),
            self.server_errors.load(Relaxed),
        );
        let refused = too_many + server_errors;
        let share = refused as f64 * 100.0 / answers as f64;
        if refused >= MIN_REFUSALS && share > self.pct {
            let reason = format!(
                "stopped at once: the target answered {refused} of {answers} requests with 429 \
                 ({too_many}) or 5xx ({server_errors}), {share:.1} %, above --abort-on-errors {} %",
                self.pct
            );
            if self.reason.set(reason).is_ok() {
                tracing::error!("{}", self.reason.get().map_or("", String::as_str));
            }
            self.tripped.cancel();
        }
    }

    /// Cancelled when the guard trips.
    pub fn tripped(&self) -> &CancellationToken {
        &self.tripped
    }

    /// Why the run was stopped, if it was.
    pub fn reason(&self) -> Option<&str> {
        self.reason.get().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_above_the_share_after_enough_refusals() {
        let guard = RefusalGuard::new(10.0);
        for _ in 0..9 {
            guard.observe(StatusCode::TOO_MANY_REQUESTS);
        }
        assert!(guard.reason().is_none(), "fewer than {MIN_REFUSALS}");
        for _ in 0..200 {
            guard.observe(StatusCode::OK);
        }
        guard.observe(StatusCode::SERVICE_UNAVAILABLE);
        assert!(guard.reason().is_none(), "10 of 210 is under 10 %");
        // It trips at the first refusal past 10 %: 23 of 223 (9 × 429, 14 × 5xx); the reason
        // stays that of the moment it tripped.
        for _ in 0..20 {
            guard.observe(StatusCode::BAD_GATEWAY);
        }
        let reason = guard.reason().expect("tripped");
        assert!(
            reason.contains("429 (9)") && reason.contains("5xx (14)"),
            "{reason}"
        );
        assert!(reason.contains("--abort-on-errors 10 %"), "{reason}");
        assert!(guard.tripped().is_cancelled());
    }

    #[test]
    fn the_ceiling_applies_to_targets_only_and_names_the_flag() {
        let mut scenario = crate::cli::default_scenario();
        let spec: StrategySpec = "poll@100ms".parse().expect("spec");
        assert_eq!(check_request_rate(&scenario, &spec), Ok(()));
        scenario.target = Some("http://127.0.0.1:1".into());
        // A loopback target (no --allow-remote) has no default ceiling.
        assert_eq!(check_request_rate(&scenario, &spec), Ok(()));
        scenario.allow_remote = true;
        let err = check_request_rate(&scenario, &spec).expect_err("10,010 /s");
        assert!(err.to_string().contains("--max-request-rate"), "{err}");
        scenario.safety.max_request_rate = Some(20_000.0);
        assert_eq!(check_request_rate(&scenario, &spec), Ok(()));
        // A ceiling given by name holds for a loopback target too.
        scenario.allow_remote = false;
        scenario.safety.max_request_rate = Some(5_000.0);
        assert!(check_request_rate(&scenario, &spec).is_err());
        let push: StrategySpec = "socketio".parse().expect("spec");
        assert_eq!(planned_request_rate(&scenario, &push).0, scenario.rate);
    }

    #[test]
    fn the_ramp_ceiling_guards_remote_targets_and_names_both_flags() {
        let mut scenario = Scenario {
            target: Some("http://127.0.0.1:1".into()),
            ..crate::cli::default_scenario()
        };
        // 2,000 connections/s (the default ramp) to a loopback target: no default ceiling.
        assert_eq!(check_connect_rate(&scenario), Ok(()));
        scenario.allow_remote = true;
        let err = check_connect_rate(&scenario).expect_err("2,000/s above 200/s");
        let text = err.to_string();
        assert!(
            text.contains("--connect-rate") && text.contains("--max-connect-rate"),
            "{text}"
        );
        scenario.connect_rate = 150.0;
        assert_eq!(check_connect_rate(&scenario), Ok(()));
        scenario.safety.max_connect_rate = Some(100.0);
        assert!(check_connect_rate(&scenario).is_err());
        // Given by name, it holds on loopback too.
        scenario.allow_remote = false;
        assert!(check_connect_rate(&scenario).is_err());
    }

    #[test]
    fn flags_are_checked() {
        let args = |rate, pct| SafetyArgs {
            max_request_rate: rate,
            max_connect_rate: None,
            abort_on_errors: pct,
        };
        assert!(args(Some(0.0), 5.0).to_spec().is_err());
        assert!(args(Some(f64::NAN), 5.0).to_spec().is_err());
        assert_eq!(
            args(Some(10.0), 101.0).to_spec(),
            Err(SafetyError::BadPercent(101.0))
        );
        assert!(args(Some(10.0), 0.0).to_spec().is_ok());
        assert!(args(None, 5.0).to_spec().is_ok());
        let ramp = SafetyArgs {
            max_connect_rate: Some(-1.0),
            ..args(None, 5.0)
        };
        assert!(ramp.to_spec().is_err());
    }
}
