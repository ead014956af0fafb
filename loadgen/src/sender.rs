//! Senders: post probe messages on an open-loop schedule. Probe `k` of a sender is intended at
//! `origin + offset + k·period` whatever happened to probe `k−1`; a late start is counted and the
//! latency is measured from the intended instant (and, separately, from the actual start).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use http::{HeaderValue, Method, header};
use http_body_util::Full;
use serde::Serialize;
use tokio::time::Instant;

use crate::codec::probe::Probe;
use crate::context::RunContext;
use crate::net::{HttpConn, HttpError, collect_body};
use crate::recorder::PostStatus;
use crate::schedule::{LATE_AFTER, Schedule};

/// Deadline of one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// One sender's plan.
#[derive(Debug, Clone, Copy)]
pub struct SenderPlan {
    pub index: u32,
    pub schedule: Schedule,
    /// Probes to send (those intended before the end of the measured window).
    pub count: u64,
    pub payload_bytes: usize,
}

/// The chat's `POST /messages` body.
#[derive(Serialize)]
struct PostBody<'a> {
    name: &'a str,
    message: &'a str,
}

/// The schedule of sender `index` of `senders` sharing an aggregate `rate` (messages/s):
/// each sends every `senders / rate` seconds, offset so the aggregate is evenly spaced.
pub fn sender_schedule(origin: Instant, index: u32, senders: usize, rate: f64) -> Schedule {
    let period = Duration::from_secs_f64(senders as f64 / rate);
    let offset = Duration::from_secs_f64(f64::from(index) / rate);
    Schedule::new(origin, offset, period)
}

pub async fn run(ctx: Arc<RunContext>, plan: SenderPlan) {
    let mut conn = HttpConn::new(ctx.target.clone(), ctx.counters.sender_wire.clone());
    let name = format!("sender-{}", plan.index);
    let mut text = String::with_capacity(plan.payload_bytes.max(64));
    for seq in 0..plan.count {
        let due = plan.schedule.due(seq);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = ctx.abort.cancelled() => return,
        }
        let started = Instant::now();
        if started > due + LATE_AFTER {
            ctx.counters.late_sends.fetch_add(1, Relaxed);
        }
        let probe = Probe {
            run_id: ctx.recorder.run_id(),
            sender: plan.index,
            seq,
            intended_ns: ctx.recorder.ns_since_epoch(due),
            sent_ns: ctx.recorder.ns_since_epoch(started),
        };
        text.clear();
        probe.encode(plan.payload_bytes, &mut text);
        ctx.recorder
            .probe_intended(plan.index, seq, probe.intended_ns);
        let status = match post(&mut conn, &ctx, &name, &text).await {
            Ok(()) => PostStatus::Accepted,
            Err(e) => {
                ctx.counters.error(e.kind());
                PostStatus::Failed
            }
        };
        ctx.recorder.probe_posted(plan.index, seq, status);
    }
}

/// Posts one probe text as `name` (also used by the benches' one-at-a-time deliveries).
pub(crate) async fn post(
    conn: &mut HttpConn,
    ctx: &RunContext,
    name: &str,
    text: &str,
) -> Result<(), HttpError> {
    let body = serde_json::to_vec(&PostBody {
        name,
        message: text,
    })
    .map(bytes::Bytes::from)
    .expect("a struct of two strings always serializes");
    ctx.counters.posts.fetch_add(1, Relaxed);
    let build = |t: &crate::net::TargetAddr| {
        t.request(Method::POST, "/messages")
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
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
