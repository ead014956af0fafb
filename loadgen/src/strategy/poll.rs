//! `poll`: `GET /messages?since=cursor` (or the whole list) on a fixed schedule with a random
//! phase per client; overdue ticks run late once, older ones are skipped and counted.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::Full;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::messages::ListCursor;
use crate::context::Receiver;
use crate::net::{HttpConn, HttpError, collect_body};
use crate::scenario::PollMode;
use crate::schedule::{LATE_AFTER, Schedule};

#[derive(Debug, Clone)]
pub struct PollConfig {
    pub interval: Duration,
    pub mode: PollMode,
    pub etag: bool,
    /// Receivers start reading after this message id.
    pub start_id: u64,
    /// Seeds the per-client phases (same seed, same phases).
    pub seed: u64,
}

/// One poll receiver's state between ticks. Crate-visible so the benches' on-demand pollers
/// (`bench_support`) make exactly the requests this strategy makes.
pub(crate) struct Poller {
    conn: HttpConn,
    cursor: ListCursor,
    etag: Option<HeaderValue>,
    mode: PollMode,
    use_etag: bool,
    timeout: Duration,
}

pub async fn run(config: &PollConfig, mut rx: Receiver) {
    let ctx = rx.ctx.clone();
    let mut poller = Poller::new(config, &rx);
    if let Err(e) = poller.open().await {
        rx.connect_failed(e.kind());
        return;
    }
    rx.connected();
    let schedule = Schedule::new(ctx.recorder.epoch(), phase(config, rx.id), config.interval);
    let mut next = schedule.first_at_or_after(Instant::now());
    loop {
        let due = schedule.due(next);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = rx.stopped().cancelled() => return,
        }
        let started = Instant::now();
        if started > due + LATE_AFTER {
            ctx.counters.late_polls.fetch_add(1, Relaxed);
        }
        ctx.recorder.poll_tick(due, started);
        ctx.counters.poll_ticks.fetch_add(1, Relaxed);
        // Not raced against the stop signal: a started poll completes, so the bytes the server
        // sent are the bytes this client read.
        poller.poll_once(&mut rx).await;
        let after = schedule.after(next + 1, Instant::now());
        ctx.counters.skipped_polls.fetch_add(after.skipped, Relaxed);
        next = after.index;
    }
}

/// A random phase in `[0, interval)`, the same for a given seed and client.
fn phase(config: &PollConfig, id: usize) -> Duration {
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(crate::schedule::seed_for(config.seed, id as u64));
    config.interval.mul_f64(rng.random::<f64>())
}

impl Poller {
    /// A poller for `config` on its own connection, opened by [`Poller::open`].
    pub(crate) fn new(config: &PollConfig, rx: &Receiver) -> Self {
        Poller {
            conn: HttpConn::new(rx.target(), rx.wire()),
            cursor: ListCursor {
                last_id: config.start_id,
                seen_len: 0,
            },
            etag: None,
            mode: config.mode,
            use_etag: config.etag,
            timeout: config.interval.max(super::REQUEST_TIMEOUT),
        }
    }

    /// Opens the connection now (the connect phase), instead of on the first poll.
    pub(crate) async fn open(&mut self) -> Result<(), HttpError> {
        self.conn.open().await
    }

    fn path(&self) -> String {
        if let Some(door) = self
            .conn
            .target()
            .custom_profile()
            .and_then(|p| p.poll.as_ref())
        {
            let after = (self.mode == PollMode::Cursor).then_some(self.cursor.last_id);
            return door.path(after);
        }
        match self.mode {
            PollMode::Cursor => format!("/messages?since={}", self.cursor.last_id),
            PollMode::Full => "/messages".to_string(),
        }
    }

    pub(crate) async fn poll_once(&mut self, rx: &mut Receiver) {
        rx.request();
        let requested = Instant::now();
        let answer = self.fetch(rx).await;
        if answer.is_ok() {
            // The server's share of the poll: request to answer read (connect included when
            // the keep-alive connection had to be reopened).
            rx.ctx.recorder.poll_answered(requested, Instant::now());
        }
        match answer {
            Ok(None) => {
                rx.ctx.counters.not_modified.fetch_add(1, Relaxed);
                rx.empty_poll();
                rx.check_stale(requested);
            }
            Ok(Some(body)) => {
                self.apply(&body, rx);
                rx.check_stale(requested);
            }
            Err(e) => rx.error(e.kind()),
        }
    }

    /// The body of a 200 answer, or `None` for 304 Not Modified.
    async fn fetch(&mut self, rx: &Receiver) -> Result<Option<bytes::Bytes>, HttpError> {
        let path = self.path();
        let etag = self.etag.clone().filter(|_| self.use_etag);
        let build = |t: &crate::net::TargetAddr| {
            let mut b = t.request(Method::GET, &path);
            if let Some(tag) = &etag {
                b = b.header(header::IF_NONE_MATCH, tag.clone());
            }
            b.body(Full::default())
        };
        let resp = self.conn.send(build, true, self.timeout).await?;
        let status = resp.status();
        if self
            .cursor
            .restart_if_ahead(crate::net::latest_id_header(resp.headers()))
        {
            rx.log_restarted();
        }
        if self.use_etag {
            self.etag = resp.headers().get(header::ETAG).cloned();
        }
        let body = collect_body(resp, self.timeout).await?;
        match status {
            StatusCode::NOT_MODIFIED => Ok(None),
            s if s.is_success() => Ok(Some(body)),
            s => Err(HttpError::Status(s)),
        }
    }

    fn apply(&mut self, body: &[u8], rx: &mut Receiver) {
        match self.cursor.apply(body, rx, Instant::now()) {
            Ok(diff) => {
                if diff.new_items == 0 {
                    rx.empty_poll();
                }
                if diff.without_ids && self.mode == PollMode::Cursor {
                    // The server ignored `since`: it has no cursors. Fetch the whole list.
                    self.mode = PollMode::Full;
                    rx.ctx.fell_back_to_full_list.store(true, Relaxed);
                }
            }
            Err(_) => rx.error(crate::counters::ErrorKind::Protocol),
        }
    }
}
