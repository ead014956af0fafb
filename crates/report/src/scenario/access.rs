//! What a scenario says about getting into the target (issue 15): TLS trust, extra headers, a
//! login, a profile. In `results.json` without any secret: header values, the login body and the
//! Socket.IO auth payload are never serialized.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the generator trusts a TLS server (`--ca-cert`, `--insecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsTrust {
    /// Trust only the CA certificate(s) in this PEM file instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the server's certificate at all.
    #[serde(default)]
    pub insecure: bool,
}

/// One `--header`: the value is a secret as often as not, so results keep only the name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderSpec {
    pub name: String,
    #[serde(skip)]
    pub value: String,
}

/// `--login`: the body (credentials) is never written to results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSpec {
    pub method: String,
    pub url: String,
    #[serde(skip)]
    pub body: String,
}

/// What a scenario says about access; in `results.json` without any secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessSpec {
    #[serde(flatten)]
    pub tls: TlsTrust,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderSpec>,
    /// Whether a Socket.IO auth payload was sent (the payload itself is not kept).
    #[serde(skip)]
    pub socketio_auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginSpec>,
    /// `--profile` as given (a built-in name or a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}
