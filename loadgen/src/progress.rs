//! Live counters on an indicatif bar while a run goes (hidden when stderr is not a terminal).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::context::RunContext;

const REFRESH: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connect,
    Warmup,
    Measure,
    Drain,
    Done,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Warmup => "warm-up",
            Phase::Measure => "measure",
            Phase::Drain => "drain",
            Phase::Done => "done",
        })
    }
}

/// A spinner-style bar for `label` on stderr, or a hidden one when stderr is not a terminal.
pub fn default_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// Redraws `bar` with the run's counters until the phase is `Done`.
pub async fn follow(bar: ProgressBar, ctx: Arc<RunContext>, mut phase: watch::Receiver<Phase>) {
    let mut last = (Instant::now(), ctx.counters.receiver_requests.load(Relaxed));
    loop {
        let current = *phase.borrow_and_update();
        if current == Phase::Done {
            break;
        }
        let now = Instant::now();
        let requests = ctx.counters.receiver_requests.load(Relaxed);
        let rate = (requests - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-3);
        last = (now, requests);
        let c = &ctx.counters;
        let (connected, posts) = (c.connected.load(Relaxed), c.posts.load(Relaxed));
        let delivered = c.deliveries.load(Relaxed);
        // Deliveries still owed for what was posted so far (in flight, or missing).
        let pending = (posts * connected).saturating_sub(delivered);
        bar.set_message(format!(
            "{current}: {connected} connected, {posts} sent, {delivered} delivered, {pending} pending, {} errors, {rate:.0} req/s",
            c.errors_total(),
        ));
        bar.tick();
        tokio::select! {
            _ = tokio::time::sleep(REFRESH) => {}
            _ = phase.changed() => {}
        }
    }
    bar.finish_and_clear();
}
