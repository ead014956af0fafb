//! Event-loop lag of the generator's runtime, per worker thread.
//!
//! A latency measured by the generator includes the time its own runtime took to get round to
//! the receiving task once its data was ready. [`LoopLag`] measures exactly that wait: a ticker
//! thread of its own wakes on a fixed grid (`start + k · period`, on the OS clock with
//! microsecond precision) and hands `tasks` tiny tasks to the runtime, each of which records how
//! long it waited until a worker ran it, into an HdrHistogram keyed by the name of the OS thread
//! that ran it: tasks move between workers (work stealing), so the thread, not the task, is the
//! unit. A worker kept busy (or blocked) delays them exactly as it delays a receiver whose socket
//! became readable.
//!
//! # Why not a sleeping task
//! A task that sleeps a period and records its overshoot measures tokio's timer as much as the
//! runtime: the timer wakes on a 1 ms grid, so an idle runtime already shows up to ~1 ms of
//! "lag" — as large as the push latencies it is meant to bound. The ticker thread's wake-up
//! jitter (tens of µs) is not counted: each sample starts when the task is handed over.
//!
//! # Thread names
//! Tokio names every worker `tokio-runtime-worker` unless told otherwise, which folds all
//! workers into one key: give the runtime a `thread_name_fn` that numbers them (loadgen does).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use std::time::Instant;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::results::new_latency_histogram;

/// Name recorded for a thread without one.
pub const UNNAMED: &str = "unnamed";

/// Why the probe cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoopLagError {
    #[error("the loop-lag period must be positive")]
    ZeroPeriod,
    #[error("the loop-lag probe needs at least one task")]
    NoTasks,
    #[error("cannot start the loop-lag ticker thread: {0}")]
    Thread(String),
}

/// How long the handed-over tasks waited for a worker (µs, at least 1).
#[derive(Debug, Clone)]
pub struct LoopLagReport {
    /// By the name of the thread that woke up.
    pub per_thread: BTreeMap<String, Histogram<u64>>,
    /// Every wake-up.
    pub all: Histogram<u64>,
    /// The probe tasks' sleep period.
    pub period: Duration,
}

impl LoopLagReport {
    fn new(period: Duration) -> Self {
        LoopLagReport {
            per_thread: BTreeMap::new(),
            all: new_latency_histogram(),
            period,
        }
    }

    fn record(&mut self, thread: &str, lag_us: u64) {
        let value = lag_us.max(1);
        match self.per_thread.get_mut(thread) {
            Some(h) => h.saturating_record(value),
            None => {
                let mut h = new_latency_histogram();
                h.saturating_record(value);
                self.per_thread.insert(thread.to_string(), h);
            }
        }
        self.all.saturating_record(value);
    }
}

/// The running probe: a ticker thread handing timed tasks to a runtime.
#[derive(Debug)]
pub struct LoopLag {
    report: Arc<Mutex<LoopLagReport>>,
    ticker: Option<std::thread::JoinHandle<()>>,
    /// Child of the caller's token: cancelled by the caller, or by [`LoopLag::finish`].
    stop: CancellationToken,
}

impl LoopLag {
    /// Starts the ticker: every `period` (e.g. 10 ms) it hands `tasks` tasks to `runtime`
    /// (one per worker thread is a good choice), until `stop` is cancelled or
    /// [`finish`](Self::finish) is called.
    pub fn start(
        runtime: &Handle,
        tasks: usize,
        period: Duration,
        stop: &CancellationToken,
    ) -> Result<LoopLag, LoopLagError> {
        if period.is_zero() {
            return Err(LoopLagError::ZeroPeriod);
        }
        if tasks == 0 {
            return Err(LoopLagError::NoTasks);
        }
        let report = Arc::new(Mutex::new(LoopLagReport::new(period)));
        let stop = stop.child_token();
        let ticker = {
            let (runtime, stop, report) = (runtime.clone(), stop.clone(), Arc::clone(&report));
            std::thread::Builder::new()
                .name("loadgen-looplag".into())
                .spawn(move || tick(&runtime, tasks, period, &stop, &report))
                .map_err(|e| LoopLagError::Thread(e.to_string()))?
        };
        Ok(LoopLag {
            report,
            ticker: Some(ticker),
            stop,
        })
    }

    /// Forgets everything recorded so far: call it when the measured window starts.
    pub fn reset(&self) {
        let mut report = lock(&self.report);
        let period = report.period;
        *report = LoopLagReport::new(period);
    }

    /// What has been recorded since the start or the last [`reset`](Self::reset).
    pub fn snapshot(&self) -> LoopLagReport {
        lock(&self.report).clone()
    }

    /// Stops the ticker, waits for it, and returns what was recorded since the start or the
    /// last [`reset`](Self::reset).
    pub async fn finish(mut self) -> LoopLagReport {
        self.stop.cancel();
        if let Some(ticker) = self.ticker.take() {
            // The ticker sleeps at most one period; wait for it off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || ticker.join()).await;
        }
        lock(&self.report).clone()
    }
}

impl Drop for LoopLag {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The report outlives a panicking recorder: a histogram is never left half-updated.
fn lock(report: &Mutex<LoopLagReport>) -> std::sync::MutexGuard<'_, LoopLagReport> {
    report.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The ticker thread: at each grid point, hand `tasks` timed tasks to the runtime.
fn tick(
    runtime: &Handle,
    tasks: usize,
    period: Duration,
    stop: &CancellationToken,
    report: &Arc<Mutex<LoopLagReport>>,
) {
    let origin = Instant::now();
    let mut deadline = origin + period;
    loop {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        if stop.is_cancelled() {
            return;
        }
        for _ in 0..tasks {
            let handed = std::time::Instant::now();
            let report = Arc::clone(report);
            runtime.spawn(async move {
                let waited = u64::try_from(handed.elapsed().as_micros()).unwrap_or(u64::MAX);
                let thread = std::thread::current();
                lock(&report).record(thread.name().unwrap_or(UNNAMED), waited);
            });
        }
        match next_deadline(origin, period, Instant::now()) {
            Some(next) => deadline = next,
            None => return,
        }
    }
}

/// The first grid point `origin + k · period` (k ≥ 1) strictly after `now`: the next one when on
/// time, and a skip past the missed ones when late by a period or more. `None` when the grid
/// point is not representable (after centuries).
fn next_deadline(origin: Instant, period: Duration, now: Instant) -> Option<Instant> {
    let elapsed = now.saturating_duration_since(origin).as_nanos();
    let period_ns = period.as_nanos().max(1);
    let k = elapsed / period_ns + 1;
    let offset = u64::try_from(k.checked_mul(period_ns)?).ok()?;
    origin.checked_add(Duration::from_nanos(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(workers: usize, name: &str) -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn deadlines_stay_on_the_grid() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        // On time, or late by less than a period: the next grid point.
        assert_eq!(
            next_deadline(origin, ms(10), origin + ms(10)),
            Some(origin + ms(20))
        );
        assert_eq!(
            next_deadline(origin, ms(10), origin + ms(13)),
            Some(origin + ms(20))
        );
        // Late by more than a period: skip to the first grid point after now.
        assert_eq!(
            next_deadline(origin, ms(10), origin + ms(57)),
            Some(origin + ms(60))
        );
        assert_eq!(next_deadline(origin, ms(10), origin), Some(origin + ms(10)));
    }

    #[test]
    fn start_rejects_a_zero_period_or_no_tasks() {
        let rt = runtime(1, "lag-test-args");
        let stop = CancellationToken::new();
        assert_eq!(
            LoopLag::start(rt.handle(), 1, Duration::ZERO, &stop).err(),
            Some(LoopLagError::ZeroPeriod)
        );
        assert_eq!(
            LoopLag::start(rt.handle(), 0, Duration::from_millis(10), &stop).err(),
            Some(LoopLagError::NoTasks)
        );
    }

    /// An idle runtime runs a handed-over task within a wake-up: p50 well under 2 ms (the
    /// timer-based probe this replaced could not go below its 1 ms tick).
    #[test]
    fn an_idle_runtime_lags_less_than_two_milliseconds() {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name_fn(move || {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("lag-test-idle-{n}")
            })
            .enable_all()
            .build()
            .unwrap();
        let stop = CancellationToken::new();
        let lag = LoopLag::start(rt.handle(), 2, Duration::from_millis(5), &stop).unwrap();
        let report = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            lag.finish().await
        });
        // 2 tasks × 400 ms / 5 ms, less the wake-ups lost to the machine's load.
        assert!(report.all.len() >= 80, "{} wake-ups", report.all.len());
        // Idle here means no work of its own; other tests share the two cores, so the bound
        // leaves room for an OS scheduling delay (quiet, it measures tens of µs).
        assert!(
            report.all.value_at_quantile(0.5) < 5_000,
            "p50 {} µs",
            report.all.value_at_quantile(0.5)
        );
        // Keyed by the workers' own names (they are the first two threads the runtime made).
        assert!(!report.per_thread.is_empty());
        for name in report.per_thread.keys() {
            assert!(
                ["lag-test-idle-0", "lag-test-idle-1"].contains(&name.as_str()),
                "{name}"
            );
        }
        assert_eq!(report.period, Duration::from_millis(5));
        let per_thread: u64 = report.per_thread.values().map(|h| h.len()).sum();
        assert_eq!(per_thread, report.all.len());
    }

    /// A task blocks the only worker for 150 ms. A grid point falls within the first 10 ms of
    /// the block when the ticker thread is on time, and the task handed over then cannot run
    /// before the block ends. The bound leaves the ticker 40 ms to wake late on a loaded
    /// machine: a task still waits at least 100 ms.
    #[test]
    fn a_blocked_worker_shows_up_as_lag() {
        let rt = runtime(1, "lag-test-blocked");
        let stop = CancellationToken::new();
        let lag = LoopLag::start(rt.handle(), 1, Duration::from_millis(10), &stop).unwrap();
        let report = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(150)) })
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            lag.finish().await
        });
        let blocked = &report.per_thread["lag-test-blocked"];
        assert!(blocked.max() >= 100_000, "max {} µs", blocked.max());
        assert_eq!(report.all.max(), blocked.max());
    }

    /// Only the window after `reset` counts: a block before it is forgotten. (Bounds as in
    /// `a_blocked_worker_shows_up_as_lag`, with room for a loaded machine.)
    #[test]
    fn reset_starts_the_measured_window() {
        let rt = runtime(1, "lag-test-reset");
        let stop = CancellationToken::new();
        let lag = LoopLag::start(rt.handle(), 1, Duration::from_millis(10), &stop).unwrap();
        let (before, after) = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tokio::spawn(async { std::thread::sleep(Duration::from_millis(150)) })
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            let before = lag.snapshot();
            lag.reset();
            tokio::time::sleep(Duration::from_millis(100)).await;
            (before, lag.finish().await)
        });
        assert!(
            before.all.max() >= 100_000,
            "before: max {}",
            before.all.max()
        );
        assert!(after.all.max() < 100_000, "after: max {}", after.all.max());
        assert!(!after.all.is_empty());
    }

    /// Cancelling the caller's token stops the tasks: nothing is recorded afterwards.
    #[test]
    fn the_callers_token_stops_the_probe() {
        let rt = runtime(1, "lag-test-stop");
        let stop = CancellationToken::new();
        let lag = LoopLag::start(rt.handle(), 1, Duration::from_millis(5), &stop).unwrap();
        let (at_stop, at_finish) = rt.block_on(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.cancel();
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            let at_stop = lag.snapshot().all.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
            (at_stop, lag.finish().await.all.len())
        });
        assert!(at_stop > 0);
        assert_eq!(at_stop, at_finish);
    }
}
