//! The generator's own conversations with the target, on connections counted apart from the
//! strategy's: what the target supports, whether it is still alive, what its /metrics say.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, StatusCode, header};
use http_body_util::Full;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::counters::WireCounters;
use crate::net::{HttpConn, HttpError, TargetAddr, collect_body};
use crate::scenario::StrategyKind;
use crate::strategy::{Capabilities, Item};
use crate::target::ChildServer;

const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the watchdog checks that the target is alive.
const HEALTH_PERIOD: Duration = Duration::from_millis(500);
/// A target that has not answered for this long is declared dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("target {addr} is unreachable: {source} (is the server running? check --target)")]
    Unreachable { addr: String, source: HttpError },
    #[error("target {addr} does not serve the chat API: GET /messages answered {detail}")]
    NotAChat { addr: String, detail: String },
    #[error("profile `{profile}` declares no {door} door: --strategy {strategy} cannot run")]
    NoDoor {
        profile: String,
        door: &'static str,
        strategy: &'static str,
    },
    #[error(
        "target {addr} does not answer as profile `{profile}` says: GET {path} answered {detail}"
    )]
    NotAsProfiled {
        addr: String,
        profile: String,
        path: String,
        detail: String,
    },
}

/// Finds out once what the target supports (see [`Capabilities`]).
pub async fn detect(
    target: &Arc<TargetAddr>,
    wire: &Arc<WireCounters>,
    kind: StrategyKind,
) -> Result<Capabilities, ControlError> {
    if let Some(profile) = target.custom_profile() {
        return detect_profiled(target, profile, wire, kind).await;
    }
    let mut conn = HttpConn::new(target.clone(), wire.clone());
    let addr = target.addr.to_string();
    let unreachable = |source| ControlError::Unreachable {
        addr: addr.clone(),
        source,
    };
    let not_a_chat = |detail: String| ControlError::NotAChat {
        addr: addr.clone(),
        detail,
    };
    let (status, body) = match get(&mut conn, "/messages?since=0").await {
        Ok(answer) => answer,
        Err(e @ HttpError::TooLarge) => return Err(not_a_chat(e.to_string())),
        Err(e) => return Err(unreachable(e)),
    };
    if !status.is_success() {
        return Err(not_a_chat(format!("HTTP {status}")));
    }
    let items: Vec<Item<'_>> = serde_json::from_slice(&body)
        .map_err(|e| not_a_chat(format!("something that is not a JSON message list ({e})")))?;
    let ids: Option<Vec<u64>> = items.iter().map(|i| i.id).collect();
    // An SSE check is only made when it matters: it opens a stream the generator then drops.
    let sse = if kind == StrategyKind::Sse || (kind == StrategyKind::Longpoll && items.is_empty()) {
        has_event_stream(&mut conn).await.map_err(unreachable)?
    } else {
        false
    };
    let cursor = match &ids {
        Some(ids) if !ids.is_empty() => true,
        // An empty list cannot show ids; the project's server is recognised by its event stream.
        Some(_) => sse || kind != StrategyKind::Longpoll,
        None => false,
    };
    Ok(Capabilities {
        cursor,
        sse,
        last_id: ids.and_then(|ids| ids.into_iter().max()).unwrap_or(0),
    })
}

/// [`detect`] for a profiled target: its doors are what its profile declares; the poll door's
/// list (if any) gives the highest id at the start.
async fn detect_profiled(
    target: &Arc<TargetAddr>,
    profile: &crate::profile::Profile,
    wire: &Arc<WireCounters>,
    kind: StrategyKind,
) -> Result<Capabilities, ControlError> {
    let no_door = |door, strategy| ControlError::NoDoor {
        profile: profile.name.clone(),
        door,
        strategy,
    };
    match kind {
        StrategyKind::Longpoll => return Err(no_door("long-poll", "longpoll")),
        StrategyKind::Sse if profile.sse.is_none() => return Err(no_door("sse", "sse")),
        StrategyKind::Poll if profile.poll.is_none() => return Err(no_door("poll", "poll")),
        StrategyKind::Socketio | StrategyKind::SocketioPolling if profile.socketio.is_none() => {
            return Err(no_door("socketio", "socketio"));
        }
        _ => {}
    }
    let Some(door) = &profile.poll else {
        return Ok(Capabilities {
            cursor: false,
            sse: profile.sse.is_some(),
            last_id: 0,
        });
    };
    let addr = target.addr.to_string();
    let path = door.path(None);
    let mut conn = HttpConn::new(target.clone(), wire.clone());
    let (status, body) =
        get(&mut conn, &path)
            .await
            .map_err(|source| ControlError::Unreachable {
                addr: addr.clone(),
                source,
            })?;
    let not_as_profiled = |detail: String| ControlError::NotAsProfiled {
        addr: addr.clone(),
        profile: profile.name.clone(),
        path: path.clone(),
        detail,
    };
    if !status.is_success() {
        return Err(not_as_profiled(format!("HTTP {status}")));
    }
    let list =
        crate::profile::extract_list(&body, door).map_err(|e| not_as_profiled(e.to_string()))?;
    Ok(Capabilities {
        cursor: door.cursor.is_some(),
        sse: profile.sse.is_some(),
        last_id: list.iter().filter_map(|m| m.id).max().unwrap_or(0),
    })
}

async fn get(conn: &mut HttpConn, path: &str) -> Result<(StatusCode, bytes::Bytes), HttpError> {
    let build = |t: &TargetAddr| t.request(Method::GET, path).body(Full::default());
    let resp = conn.send(build, true, CONTROL_TIMEOUT).await?;
    let status = resp.status();
    Ok((status, collect_body(resp, CONTROL_TIMEOUT).await?))
}

async fn has_event_stream(conn: &mut HttpConn) -> Result<bool, HttpError> {
    let build = |t: &TargetAddr| t.request(Method::GET, "/events").body(Full::default());
    let resp = conn.send(build, true, CONTROL_TIMEOUT).await?;
    let is_stream = resp.status() == StatusCode::OK
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
    conn.close();
    Ok(is_stream)
}

/// What the target's /metrics said about its process, if it says anything.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerMetrics {
    pub cpu_seconds: Option<f64>,
    pub rss_bytes: Option<u64>,
}

impl ServerMetrics {
    fn parse(text: &str) -> ServerMetrics {
        ServerMetrics {
            cpu_seconds: pushpoll_wire::prometheus::sample(text, "process_cpu_seconds_total"),
            rss_bytes: pushpoll_wire::prometheus::sample(text, "process_resident_memory_bytes")
                .map(|v| v as u64),
        }
    }
}

/// The server's CPU at a phase boundary, from wherever it can be read.
pub enum ServerReading {
    Proc(crate::resources::ProcSample),
    Metrics(ServerMetrics),
    Unavailable,
}

/// Scrapes `/metrics` once (control connection).
pub async fn scrape(conn: &mut HttpConn) -> Result<ServerMetrics, HttpError> {
    let (status, body) = get(conn, "/metrics").await?;
    if !status.is_success() {
        return Ok(ServerMetrics::default());
    }
    Ok(ServerMetrics::parse(&String::from_utf8_lossy(&body)))
}

/// Why the run had to stop early because of the server, written once.
#[derive(Debug, Default)]
pub struct DeathNote(Mutex<Option<String>>);

impl DeathNote {
    pub fn record(&self, detail: String) {
        let mut note = self.0.lock().unwrap_or_else(|p| p.into_inner());
        note.get_or_insert(detail);
    }

    pub fn detail(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Windows in which the target did not answer its health checks (shorter than [`DEAD_AFTER`],
/// or the run would have ended): a restart, a stall. Each is `(from, to)`; `to` is `None` while
/// the outage lasts.
#[derive(Debug, Default)]
pub struct Outages(Mutex<Vec<(Instant, Option<Instant>)>>);

impl Outages {
    fn failed(&self, at: Instant) {
        let mut windows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if windows.last().is_none_or(|(_, to)| to.is_some()) {
            windows.push((at, None));
        }
    }

    fn answered(&self, at: Instant) {
        let mut windows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, to @ None)) = windows.last_mut() {
            *to = Some(at);
        }
    }

    /// The windows, an open one closed at `end`.
    pub fn windows(&self, end: Instant) -> Vec<(Instant, Instant)> {
        let windows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .iter()
            .map(|(f, t)| (*f, t.unwrap_or(end)))
            .collect()
    }
}

/// Watches the target until `stop`: a child that exits, or a target that does not answer
/// `/metrics` for [`DEAD_AFTER`], is recorded in `note` and `abort` is cancelled. Returns the
/// highest resident memory /metrics reported.
pub async fn watchdog(
    mut conn: HttpConn,
    child: Option<&ChildServer>,
    stop: CancellationToken,
    abort: CancellationToken,
    note: &DeathNote,
    outages: &Outages,
) -> Option<u64> {
    let child_exit = async {
        match child {
            Some(child) => child.wait_exit().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(child_exit);
    let mut last_ok = Instant::now();
    let mut peak_rss = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(HEALTH_PERIOD) => {}
            _ = stop.cancelled() => return peak_rss,
            detail = &mut child_exit => {
                // After an abort (Ctrl-C) the child's exit is not news.
                if !abort.is_cancelled() {
                    note.record(detail);
                }
                abort.cancel();
                return peak_rss;
            }
        }
        match scrape(&mut conn).await {
            Ok(m) => {
                last_ok = Instant::now();
                outages.answered(last_ok);
                peak_rss = peak_rss.max(m.rss_bytes);
            }
            Err(_) if abort.is_cancelled() => return peak_rss,
            Err(e) if last_ok.elapsed() > DEAD_AFTER => {
                note.record(format!(
                    "target {} stopped answering for more than {DEAD_AFTER:?}: {e}",
                    conn.target().addr
                ));
                abort.cancel();
                return peak_rss;
            }
            Err(_) => outages.failed(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any /metrics text (a target's, so anything): a number or nothing, never a panic.
        #[test]
        fn any_metrics_text_reads_or_is_ignored(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = ServerMetrics::parse(&text);
            let _ = pushpoll_wire::prometheus::sample(&text, "process_cpu_seconds_total");
        }
    }

    #[test]
    fn reads_unlabelled_prometheus_samples() {
        let text = "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\nprocess_resident_memory_bytes 2.5e7\nfoo{a=\"b\"} 3\n";
        assert_eq!(
            pushpoll_wire::prometheus::sample(text, "process_cpu_seconds_total"),
            Some(1.25)
        );
        let m = ServerMetrics::parse(text);
        assert_eq!(m.rss_bytes, Some(25_000_000));
        assert_eq!(pushpoll_wire::prometheus::sample(text, "foo"), None);
        assert_eq!(pushpoll_wire::prometheus::sample(text, "process_cpu"), None);
    }
}
