//! How the generator gets into a server that wants more than a plain request (issue 15): TLS
//! trust, `--header` on every request and WebSocket upgrade, the Socket.IO `auth` payload, and a
//! cookie captured from `--login` for the whole run.
//!
//! `AccessArgs` (flags) → `AccessSpec` (in the scenario, secrets never serialized) →
//! [`reach`] → `ClientAccess` on the [`TargetAddr`] every connection starts from.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::Full;

pub use crate::scenario::access::{AccessSpec, HeaderSpec, LoginSpec};

use crate::counters::WireCounters;
use crate::net::tls::{TlsClient, TlsSetupError, TlsTrust};
use crate::net::{HttpConn, HttpError, TargetAddr, collect_body};

/// Deadline of the `--login` request.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The flags (flattened into every command that runs load).
#[derive(Debug, Clone, Default, Args)]
pub struct AccessArgs {
    /// Trust only the CA certificate(s) in this PEM file for an https:// target (a private CA),
    /// instead of the system's root certificates.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// DANGEROUS: do not verify an https:// target's certificate (the handshake still costs the
    /// same). Only for a test server whose CA you cannot pass with --ca-cert.
    #[arg(long)]
    pub insecure: bool,
    /// Add this header to every request and to the WebSocket upgrade (repeatable), e.g.
    /// `--header 'Authorization: Bearer abc'`.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<HeaderSpec>,
    /// The Socket.IO `auth` payload sent with the namespace connect (a JSON object), e.g.
    /// `--socketio-auth '{"token":"abc"}'`.
    #[arg(long, value_name = "JSON", value_parser = parse_auth)]
    pub socketio_auth: Option<String>,
    /// Log in once before the run: `--login POST /login '{"user":"a"}'`; the cookies its answer
    /// sets go with every request of the run. The body is sent as JSON when it starts with `{`,
    /// else as a form.
    #[arg(long, num_args = 3, value_names = ["METHOD", "URL", "BODY"])]
    pub login: Option<Vec<String>>,
    /// The target's routes and event names: `pushpoll` (the project's server, the default),
    /// `tutorial` (the Express tutorial app) or a TOML profile file (see the README).
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessArgsError {
    #[error("--login wants METHOD URL BODY; `{0}` is not an HTTP method")]
    LoginMethod(String),
    #[error("--login URL `{0}` must be a path on the target (`/login`) or an http(s) URL")]
    LoginUrl(String),
    #[error("--ca-cert and --insecure contradict each other: pass one")]
    CaAndInsecure,
    #[error("--profile: {0}")]
    Profile(String),
}

impl AccessArgs {
    pub fn to_spec(&self) -> Result<AccessSpec, AccessArgsError> {
        if self.insecure && self.ca_cert.is_some() {
            return Err(AccessArgsError::CaAndInsecure);
        }
        let login = match self.login.as_deref() {
            None => None,
            Some([method, url, body]) => {
                let m = method.to_ascii_uppercase();
                if Method::from_bytes(m.as_bytes()).is_err() || m.is_empty() {
                    return Err(AccessArgsError::LoginMethod(method.clone()));
                }
                if login_path(url).is_none() {
                    return Err(AccessArgsError::LoginUrl(url.clone()));
                }
                Some(LoginSpec {
                    method: m,
                    url: url.clone(),
                    body: body.clone(),
                })
            }
            // clap enforces three values.
            Some(_) => None,
        };
        Ok(AccessSpec {
            tls: TlsTrust {
                ca_cert: self.ca_cert.clone(),
                insecure: self.insecure,
            },
            headers: self.headers.clone(),
            socketio_auth: self.socketio_auth.clone(),
            login,
            profile: match &self.profile {
                // Loaded now so that a mistake stops the command before anything runs.
                Some(p) => crate::profile::Profile::load(p)
                    .map(|_| Some(p.clone()))
                    .map_err(|e| AccessArgsError::Profile(e.to_string()))?,
                None => None,
            },
        })
    }
}

/// `Name: value` → a header, checked as HTTP would.
fn parse_header(text: &str) -> Result<HeaderSpec, String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `Name: value` (no colon)"))?;
    let (name, value) = (name.trim(), value.trim());
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    HeaderValue::from_str(value)
        .map_err(|_| format!("the value of `{name}` has characters a header cannot carry"))?;
    Ok(HeaderSpec {
        name: name.to_string(),
        value: value.to_string(),
    })
}

/// `--socketio-auth`: one JSON object, kept as its compact text.
fn parse_auth(text: &str) -> Result<String, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v.to_string()),
        Ok(_) => {
            Err("the Socket.IO auth payload must be a JSON object, e.g. {\"token\":\"abc\"}".into())
        }
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// The path (and query) a `--login` URL names on the target.
fn login_path(url: &str) -> Option<String> {
    if url.starts_with('/') {
        return Some(url.to_string());
    }
    let uri: http::Uri = url.parse().ok()?;
    matches!(uri.scheme_str(), Some("http" | "https")).then(|| {
        uri.path_and_query()
            .map_or("/".to_string(), |p| p.to_string())
    })
}

/// What every connection of a run carries; built once by [`reach`].
#[derive(Debug, Clone, Default)]
pub struct ClientAccess {
    pub tls: Option<TlsClient>,
    /// `--header`s and the login cookie, added to every request and WebSocket upgrade.
    pub headers: HeaderMap,
    /// The Socket.IO connect packet's `auth` JSON.
    pub socketio_auth: Option<String>,
    /// Sees every answer's status; stops the run when too many are 429 or 5xx.
    pub guard: Arc<crate::safety::RefusalGuard>,
}

impl ClientAccess {
    /// Adds the run's headers (replacing any of the same name).
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error("--login {method} {url}: {source}")]
    LoginFailed {
        method: String,
        url: String,
        source: HttpError,
    },
    #[error("--login {method} {url} was answered {status}: the credentials were not accepted")]
    LoginRefused {
        method: String,
        url: String,
        status: StatusCode,
    },
    #[error("--login {method} {url} was answered {status} but set no cookie (Set-Cookie)")]
    LoginNoCookie {
        method: String,
        url: String,
        status: StatusCode,
    },
}

/// `target` (reached at `host` over TLS when `tls`) with everything `spec` asks for: the TLS
/// client, the headers, and the cookie of the login, done now (its bytes are not counted: it is
/// the run's setup, not the strategy's cost).
pub async fn reach(
    target: TargetAddr,
    host: &str,
    tls: bool,
    spec: &AccessSpec,
    safety: &crate::safety::SafetySpec,
) -> Result<TargetAddr, AccessError> {
    let target = match &spec.profile {
        Some(p) => target.with_profile(crate::profile::Profile::load(p)?),
        None => target,
    };
    let mut access = ClientAccess {
        tls: if tls {
            Some(TlsClient::new(host, &spec.tls)?)
        } else {
            None
        },
        headers: HeaderMap::new(),
        socketio_auth: spec.socketio_auth.clone(),
        guard: Arc::new(crate::safety::RefusalGuard::new(safety.abort_on_errors_pct)),
    };
    for h in &spec.headers {
        // Checked when parsed; a spec read back from results has no value and is skipped.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) {
            access.headers.append(name, value);
        }
    }
    if access.tls.as_ref().is_some_and(|t| !t.verified) {
        let warning = "WARNING: --insecure: the target's TLS certificate is NOT verified; anyone \
                       in the path could be answering";
        tracing::warn!("{warning}");
        eprintln!("{warning}");
    }
    let Some(login) = &spec.login else {
        return Ok(target.with_access(access));
    };
    let target = target.with_access(access);
    let cookie = log_in(&target, login).await?;
    let mut access = (*target.access).clone();
    access.headers.insert(header::COOKIE, cookie);
    Ok(target.with_access(access))
}

/// Sends the login request; the cookies it sets, as one `Cookie` header value.
async fn log_in(target: &TargetAddr, login: &LoginSpec) -> Result<HeaderValue, AccessError> {
    let path = login_path(&login.url).unwrap_or_else(|| "/".to_string());
    let method = Method::from_bytes(login.method.as_bytes()).unwrap_or(Method::POST);
    let content_type = if login.body.trim_start().starts_with('{') {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    let body = Bytes::from(login.body.clone());
    let build = |t: &TargetAddr| {
        t.request(method.clone(), &path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(body.clone()))
    };
    let failed = |source| AccessError::LoginFailed {
        method: login.method.clone(),
        url: login.url.clone(),
        source,
    };
    let mut conn = HttpConn::new(Arc::new(target.clone()), Arc::new(WireCounters::default()));
    let resp = conn
        .send(build, false, LOGIN_TIMEOUT)
        .await
        .map_err(failed)?;
    let status = resp.status();
    let cookies: Vec<String> = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(|pair| pair.trim().to_string())
        .filter(|pair| pair.contains('='))
        .collect();
    collect_body(resp, LOGIN_TIMEOUT).await.map_err(failed)?;
    if !(status.is_success() || status.is_redirection()) {
        return Err(AccessError::LoginRefused {
            method: login.method.clone(),
            url: login.url.clone(),
            status,
        });
    }
    HeaderValue::from_str(&cookies.join("; "))
        .ok()
        .filter(|_| !cookies.is_empty())
        .ok_or(AccessError::LoginNoCookie {
            method: login.method.clone(),
            url: login.url.clone(),
            status,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_checked_and_trimmed() {
        let h = parse_header("Authorization:  Bearer x ").expect("valid");
        assert_eq!(
            (h.name.as_str(), h.value.as_str()),
            ("Authorization", "Bearer x")
        );
        assert!(parse_header("no colon").unwrap_err().contains("no colon"));
        assert!(
            parse_header("bad name: x")
                .unwrap_err()
                .contains("header name")
        );
        assert!(parse_header("X-A: a\u{7}b").is_err());
    }

    #[test]
    fn socketio_auth_must_be_an_object() {
        assert_eq!(
            parse_auth(r#"{ "token": "t" }"#).expect("object"),
            r#"{"token":"t"}"#
        );
        assert!(parse_auth("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_auth("{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn login_flags_are_checked() {
        let args = |m: &str, u: &str| AccessArgs {
            login: Some(vec![m.into(), u.into(), "{}".into()]),
            ..AccessArgs::default()
        };
        let spec = args("post", "/login").to_spec().expect("valid");
        assert_eq!(spec.login.map(|l| l.method), Some("POST".to_string()));
        assert_eq!(
            args("PO ST", "/login").to_spec(),
            Err(AccessArgsError::LoginMethod("PO ST".into()))
        );
        assert_eq!(
            args("POST", "ftp://x/login").to_spec(),
            Err(AccessArgsError::LoginUrl("ftp://x/login".into()))
        );
        assert_eq!(login_path("https://h:1/a?b=c").as_deref(), Some("/a?b=c"));
    }

    #[test]
    fn secrets_stay_out_of_results() {
        let spec = AccessSpec {
            headers: vec![parse_header("Authorization: Bearer secret").expect("valid")],
            socketio_auth: Some(r#"{"token":"secret"}"#.into()),
            login: Some(LoginSpec {
                method: "POST".into(),
                url: "/login".into(),
                body: "password=secret".into(),
            }),
            ..AccessSpec::default()
        };
        let json = serde_json::to_string(&spec).expect("json");
        assert!(!json.contains("secret"), "{json}");
        assert!(
            json.contains("Authorization") && json.contains("/login"),
            "{json}"
        );
    }
}
