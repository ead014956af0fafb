//! What a scenario says about staying safe against a real server (issue 15): the request-rate and
//! connect-rate ceilings and the 429/5xx abort threshold, with their defaults.

use serde::{Deserialize, Serialize};

/// Default `--max-request-rate` of a run with `--allow-remote`: requests per second it may plan.
/// (A loopback target is this machine's own server: no ceiling unless one is given.)
pub const DEFAULT_MAX_REQUEST_RATE: f64 = 2000.0;
/// Default `--max-connect-rate` of a run with `--allow-remote`: connections per second its ramp
/// may open (a remote server meets a thousand new TLS handshakes a second as an attack).
pub const DEFAULT_MAX_CONNECT_RATE: f64 = 200.0;
/// Default `--abort-on-errors`: percent of answers that may be 429 or 5xx.
pub const DEFAULT_ABORT_ON_ERRORS: f64 = 5.0;
/// The safety settings of a scenario (`--max-request-rate`, `--max-connect-rate`,
/// `--abort-on-errors`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SafetySpec {
    /// `None`: the default, [`DEFAULT_MAX_REQUEST_RATE`] when the target may be remote.
    #[serde(default)]
    pub max_request_rate: Option<f64>,
    /// `None`: the default, [`DEFAULT_MAX_CONNECT_RATE`] when the target may be remote.
    #[serde(default)]
    pub max_connect_rate: Option<f64>,
    pub abort_on_errors_pct: f64,
}

impl Default for SafetySpec {
    fn default() -> Self {
        SafetySpec {
            max_request_rate: None,
            max_connect_rate: None,
            abort_on_errors_pct: DEFAULT_ABORT_ON_ERRORS,
        }
    }
}
