//! Senders: post probe messages on an open-loop schedule. Probe `k` of a sender is intended at
//! `origin + offsets[k]` (evenly spaced, or Poisson), whatever happened to earlier probes.
//!
//! **Truly open loop.** One pacer thread walks the merged schedule of every sender and, at each
//! intended instant, hands the POST to the runtime as a task of its own: a slow or stalled
//! server never delays the next send. Each sender keeps at most [`MAX_IN_FLIGHT`] POSTs in
//! flight (a pool of keep-alive connections); a send due while all are busy cannot leave and is
//! a failed send, counted, never a silent delay.
//!
//! **Precise.** tokio's timer wakes on a 1 ms grid, which put 0.9–1.3 ms of the generator's own
//! lateness into every push latency. The pacer sleeps on its OS thread until just before the
//! intended instant, then spins the last [`SPIN`]; the lag that remains (the pacer's wake-up
//! plus the runtime picking the task up) is measured per send as *send lag* and reported beside
//! the latency it bounds.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Method, header};
use http_body_util::Full;
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::time::Instant;

use crate::context::RunContext;
use crate::counters::ErrorKind;
use crate::net::{HttpConn, HttpError, collect_body};
use crate::recorder::PostStatus;
use crate::scenario::Arrivals;
use pushpoll_wire::probe::Probe;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Deadline of one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// POSTs one sender may have in flight (each on its own keep-alive connection).
pub const MAX_IN_FLIGHT: usize = 32;
/// The pacer spins (yielding its thread) this long before each intended instant instead of
/// sleeping: a thread sleep overshoots by the kernel's timer slack (50 µs) and a wake-up.
const SPIN: Duration = Duration::from_micros(200);
/// The pacer's longest single sleep, so that it notices an abort promptly.
const MAX_NAP: Duration = Duration::from_millis(20);

/// One sender's plan.
#[derive(Debug, Clone)]
pub struct SenderPlan {
    pub index: u32,
    pub origin: Instant,
    /// Intended send instants after `origin`, ascending: every probe intended before the end of
    /// the measured window.
    pub offsets: Arc<[Duration]>,
    pub payload_bytes: usize,
}

impl SenderPlan {
    /// When probe `seq` is intended.
    pub fn due(&self, seq: usize) -> Instant {
        self.origin + self.offsets[seq]
    }

    /// Probes intended in `[from, to)`.
    pub fn count_in(&self, from: Instant, to: Instant) -> u64 {
        let lo = self.offsets.partition_point(|&o| self.origin + o < from);
        let hi = self.offsets.partition_point(|&o| self.origin + o < to);
        hi.saturating_sub(lo) as u64
    }
}

/// The chat's `POST /messages` body.
#[derive(Serialize)]
struct PostBody<'a> {
    name: &'a str,
    message: &'a str,
}

/// The intended send offsets (from the run's send origin, before `span`) of sender `index` of
/// `senders` sharing an aggregate `rate` (messages/s).
/// - `Even`: each sends every `senders / rate` seconds, offset so the aggregate is evenly spaced.
/// - `Poisson`: each is a Poisson process of rate `rate / senders` (exponential gaps, by inverse
///   transform), so the aggregate is a Poisson process of rate `rate`; seeded per sender.
pub fn send_offsets(
    index: u32,
    senders: usize,
    rate: f64,
    arrivals: Arrivals,
    span: Duration,
    seed: u64,
) -> Vec<Duration> {
    let span = span.as_secs_f64();
    let mut out = Vec::new();
    match arrivals {
        Arrivals::Even => {
            let period = senders as f64 / rate;
            let mut t = f64::from(index) / rate;
            while t < span {
                out.push(Duration::from_secs_f64(t));
                t = f64::from(index) / rate + period * out.len() as f64;
            }
        }
        Arrivals::Poisson => {
            let per_sender = rate / senders as f64;
            let mut rng = StdRng::seed_from_u64(crate::schedule::seed_for(seed, u64::from(index)));
            let mut t = 0.0;
            loop {
                // 1 − U is in (0, 1], so the logarithm is finite.
                let u: f64 = rng.random();
                t += -(1.0 - u).ln() / per_sender;
                if t >= span {
                    break;
                }
                out.push(Duration::from_secs_f64(t));
            }
        }
    }
    out
}

/// One sender's idle connections and its POSTs in flight.
struct SenderState {
    name: String,
    idle: Mutex<Vec<HttpConn>>,
    in_flight: AtomicUsize,
    payload_bytes: usize,
    /// The sender's Socket.IO connection, when the profile sends by event.
    events: tokio::sync::Mutex<Option<crate::sio_send::EventConn>>,
}

/// Sends every probe of `plans` at its intended instant, from a pacer thread, and returns once
/// the last one has left (or the run was aborted). POSTs still in flight go on as tasks; the
/// recorder knows which are unanswered when the run closes.
pub async fn run_all(ctx: Arc<RunContext>, plans: Vec<SenderPlan>) {
    // Indexed by sender index: a shard (`--shard`) runs only some of the senders.
    let count = plans
        .iter()
        .map(|p| p.index as usize + 1)
        .max()
        .unwrap_or(0);
    let states: Arc<[SenderState]> = (0..count)
        .map(|i| SenderState {
            name: format!("sender-{i}"),
            idle: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            payload_bytes: plans
                .iter()
                .find(|p| p.index as usize == i)
                .map_or(0, |p| p.payload_bytes),
            events: tokio::sync::Mutex::new(None),
        })
        .collect();
    let mut schedule: Vec<(Instant, u32, u64)> = plans
        .iter()
        .flat_map(|p| (0..p.offsets.len()).map(move |seq| (p.due(seq), p.index, seq as u64)))
        .collect();
    schedule.sort_unstable();
    let handle = Handle::current();
    let pacer_ctx = ctx.clone();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let pacer = std::thread::Builder::new()
        .name("loadgen-pacer".into())
        .spawn(move || {
            pace(&pacer_ctx, &states, &schedule, &handle);
            let _ = done_tx.send(());
            // Lingers (asleep) until the run closes, so that the CPU it used stays in the
            // per-thread figures read at the end of the window: an exited thread is gone
            // from /proc.
            while !pacer_ctx.stop_sends.is_cancelled() && Arc::strong_count(&pacer_ctx) > 1 {
                std::thread::sleep(MAX_NAP);
            }
        });
    if pacer.is_err() {
        tracing::error!("cannot start the pacer thread: no probe is sent");
        return;
    }
    // Resolves when the last probe has left (or the pacer ended early on an abort).
    let _ = done_rx.await;
}

/// The pacer thread's loop: wait precisely for each intended instant, then dispatch.
fn pace(
    ctx: &Arc<RunContext>,
    states: &Arc<[SenderState]>,
    schedule: &[(Instant, u32, u64)],
    handle: &Handle,
) {
    for &(due, sender, seq) in schedule {
        if !wait_precisely(due.into_std(), ctx) {
            return;
        }
        let state = &states[sender as usize];
        if state.in_flight.load(Relaxed) >= MAX_IN_FLIGHT {
            // Cannot leave: every connection of this sender is busy. A failed send.
            ctx.recorder.begin_send(sender, seq, due);
            ctx.recorder
                .end_send(sender, seq, PostStatus::Failed, Instant::now());
            ctx.counters.error(ErrorKind::InFlightLimit);
            continue;
        }
        state.in_flight.fetch_add(1, Relaxed);
        handle.spawn(post_probe(ctx.clone(), states.clone(), sender, seq, due));
    }
}

/// Sleeps until shortly before `due`, then spins to it. False when the run was aborted.
fn wait_precisely(due: std::time::Instant, ctx: &RunContext) -> bool {
    loop {
        if ctx.abort.is_cancelled() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= due {
            return true;
        }
        let left = due - now;
        if left > SPIN {
            std::thread::sleep((left - SPIN).min(MAX_NAP));
        } else {
            std::thread::yield_now();
        }
    }
}

/// Starts probe `seq` of `sender`, whichever way it is sent: fixes its send instant and the
/// receivers it is owed to (`Recorder::begin_send`) and encodes its text.
fn begin_probe(
    ctx: &RunContext,
    payload_bytes: usize,
    sender: u32,
    seq: u64,
    due: Instant,
) -> String {
    let ticket = ctx.recorder.begin_send(sender, seq, due);
    let probe = Probe {
        run_id: ctx.recorder.run_id(),
        sender,
        seq,
        intended_ns: ticket.intended_ns,
        sent_ns: ticket.sent_ns,
    };
    let mut text = String::with_capacity(payload_bytes.max(64));
    probe.encode(payload_bytes, &mut text);
    text
}

/// One probe's POST, on an idle connection of its sender (or a new one).
async fn post_probe(
    ctx: Arc<RunContext>,
    states: Arc<[SenderState]>,
    sender: u32,
    seq: u64,
    due: Instant,
) {
    let state = &states[sender as usize];
    if ctx.target.profile.send.socketio.is_some() {
        emit_probe(&ctx, state, sender, seq, due).await;
        state.in_flight.fetch_sub(1, Relaxed);
        return;
    }
    let idle = state.idle.lock().map(|mut v| v.pop()).ok().flatten();
    let mut conn = idle.unwrap_or_else(|| {
        // Sender `j` posts to node `j mod K` (`--target URL1,URL2,…`).
        let node = ctx.nodes.for_index(sender as usize);
        HttpConn::new(node.target.clone(), node.sender_wire.clone())
    });
    let text = begin_probe(&ctx, state.payload_bytes, sender, seq, due);
    let outcome = tokio::select! {
        r = post(&mut conn, &ctx, &state.name, &text) => Some(r),
        // The run closed: the POST stays unanswered (the recorder counts it as lost).
        _ = ctx.stop_sends.cancelled() => None,
    };
    match outcome {
        Some(Ok(())) => {
            ctx.recorder
                .end_send(sender, seq, PostStatus::Accepted, Instant::now());
            if let Ok(mut idle) = state.idle.lock() {
                idle.push(conn);
            }
        }
        Some(Err(e)) => {
            ctx.counters.error(e.kind());
            ctx.recorder
                .end_send(sender, seq, PostStatus::Failed, Instant::now());
            // A refusal (non-2xx) was read in full: the connection is still good.
            if matches!(e, HttpError::Status(_))
                && let Ok(mut idle) = state.idle.lock()
            {
                idle.push(conn);
            }
        }
        None => {}
    }
    state.in_flight.fetch_sub(1, Relaxed);
}

/// One probe sent as the profile's Socket.IO event, on the sender's one connection (opened on
/// the first send, again after a loss). Paced and recorded exactly like a POST; since an emit
/// has no answer, the send is accepted when its frame is written to the socket (with `ack =
/// true`: when the server's ack arrives, within the POST deadline), and failed when the socket
/// cannot be opened or written (see [`crate::sio_send`]).
async fn emit_probe(
    ctx: &Arc<RunContext>,
    state: &SenderState,
    sender: u32,
    seq: u64,
    due: Instant,
) {
    let Some(event) = ctx.target.profile.send.socketio.clone() else {
        return;
    };
    let text = begin_probe(ctx, state.payload_bytes, sender, seq, due);
    let mut frame = String::with_capacity(text.len() + 64);
    pushpoll_wire::engineio::encode_sio_event(
        &event.namespace,
        &event.event,
        &event.arg(&state.name, &text),
        &mut frame,
    );
    let emit = async {
        // One connection per sender, opened by the first send that finds none (or a lost one).
        let conn = {
            let mut slot = state.events.lock().await;
            match slot.as_ref() {
                Some(conn) if conn.is_open() => conn.clone(),
                _ => {
                    let node = ctx.nodes.for_index(sender as usize);
                    let conn = crate::sio_send::EventConn::open(
                        &node.target,
                        &node.sender_wire,
                        &event.namespace,
                        POST_TIMEOUT,
                        ctx.stop_sends.clone(),
                    )
                    .await?;
                    *slot = Some(conn.clone());
                    conn
                }
            }
        };
        ctx.counters.posts.fetch_add(1, Relaxed);
        if event.ack {
            tokio::time::timeout(POST_TIMEOUT, conn.write_acked(frame, &event.namespace))
                .await
                .map_err(|_| ErrorKind::Timeout)?
        } else {
            conn.write(frame).await
        }
    };
    let outcome = tokio::select! {
        r = emit => Some(r),
        _ = ctx.stop_sends.cancelled() => None,
    };
    match outcome {
        Some(Ok(())) => {
            ctx.recorder
                .end_send(sender, seq, PostStatus::Accepted, Instant::now());
        }
        Some(Err(kind)) => {
            ctx.counters.error(kind);
            ctx.recorder
                .end_send(sender, seq, PostStatus::Failed, Instant::now());
        }
        None => {}
    }
}

/// Posts one probe text as `name` (also used by the benches' one-at-a-time deliveries): the
/// chat's `POST /messages` with `{name, message}`, or a profiled target's own route, method, body
/// template and content type.
pub(crate) async fn post(
    conn: &mut HttpConn,
    ctx: &RunContext,
    name: &str,
    text: &str,
) -> Result<(), HttpError> {
    let profile = ctx
        .target
        .custom_profile()
        .map(|_| ctx.target.profile.clone());
    let (method, route, content_type, body) = match &profile {
        Some(profile) => (
            // Checked when the profile was loaded.
            Method::from_bytes(profile.send.method.as_bytes()).unwrap_or(Method::POST),
            profile.send.route.as_str(),
            HeaderValue::from_str(&profile.send.content_type)
                .unwrap_or(HeaderValue::from_static("application/json")),
            bytes::Bytes::from(profile.send_body(name, text)),
        ),
        None => (
            Method::POST,
            "/messages",
            HeaderValue::from_static("application/json"),
            serde_json::to_vec(&PostBody {
                name,
                message: text,
            })
            .map(bytes::Bytes::from)
            .expect("a struct of two strings always serializes"),
        ),
    };
    ctx.counters.posts.fetch_add(1, Relaxed);
    let build = |t: &crate::net::TargetAddr| {
        t.request(method.clone(), route)
            .header(header::CONTENT_TYPE, content_type.clone())
            .body(Full::new(body.clone()))
    };
    let resp = conn.send(build, false, POST_TIMEOUT).await?;
    let status = resp.status();
    collect_body(resp, POST_TIMEOUT).await?;
    if status.is_success() {
        Ok(())
    } else {
        Err(HttpError::Status(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: Duration = Duration::from_secs(10);

    #[test]
    fn even_offsets_interleave_the_senders_evenly() {
        // 4 senders at 8/s in aggregate: each every 0.5 s, sender i offset by i/8 s.
        let all: Vec<Vec<Duration>> = (0..4)
            .map(|i| send_offsets(i, 4, 8.0, Arrivals::Even, SPAN, 1))
            .collect();
        assert!(
            all.iter().all(|o| o.len() == 20),
            "{:?}",
            all.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(all[1][0], Duration::from_millis(125));
        assert_eq!(all[1][3], Duration::from_millis(1625));
        let mut merged: Vec<Duration> = all.concat();
        merged.sort();
        for pair in merged.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap.abs_diff(Duration::from_millis(125)) < Duration::from_micros(1),
                "{gap:?}"
            );
        }
    }

    #[test]
    fn poisson_offsets_are_seeded_ascending_and_exponential() {
        let rate = 400.0; // 100/s per sender, ~4,000 messages in 10 s
        let all: Vec<Vec<Duration>> = (0..4)
            .map(|i| send_offsets(i, 4, rate, Arrivals::Poisson, SPAN, 42))
            .collect();
        assert_eq!(
            all[2],
            send_offsets(2, 4, rate, Arrivals::Poisson, SPAN, 42),
            "seeded"
        );
        assert_ne!(
            all[2],
            send_offsets(2, 4, rate, Arrivals::Poisson, SPAN, 43)
        );
        assert_ne!(all[0], all[1], "senders are independent");
        let total: usize = all.iter().map(Vec::len).sum();
        // Poisson count: mean 4,000, sd ~63; a fixed seed makes this deterministic.
        assert!((3_700..=4_300).contains(&total), "{total}");
        for offsets in &all {
            assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
            assert!(offsets.iter().all(|&o| o < SPAN));
        }
        // Exponential gaps: the coefficient of variation is 1 (evenly spaced would be 0), and
        // the share of gaps shorter than the mean is 1 − 1/e ≈ 63%.
        let gaps: Vec<f64> = all[0]
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        let cv = var.sqrt() / mean;
        assert!((0.85..1.15).contains(&cv), "cv {cv}");
        assert!((0.009..0.011).contains(&mean), "mean gap {mean}");
        let short = gaps.iter().filter(|&&g| g < mean).count() as f64 / gaps.len() as f64;
        assert!((0.58..0.68).contains(&short), "{short}");
    }

    #[test]
    fn a_plan_counts_probes_in_a_window() {
        let origin = Instant::now();
        let plan = SenderPlan {
            index: 0,
            origin,
            offsets: send_offsets(0, 1, 10.0, Arrivals::Even, SPAN, 1).into(),
            payload_bytes: 0,
        };
        assert_eq!(plan.due(3), origin + Duration::from_millis(300));
        assert_eq!(plan.count_in(origin, origin + SPAN), 100);
        // [1 s, 2 s) holds ticks 10..=19.
        let s = Duration::from_secs(1);
        assert_eq!(plan.count_in(origin + s, origin + 2 * s), 10);
        assert_eq!(plan.count_in(origin + 2 * s, origin + s), 0);
    }
}
