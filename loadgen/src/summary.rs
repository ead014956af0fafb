//! Turns what a run counted into its [`RunResult`]: latency statistics, delivery, traffic,
//! schedule keeping, resources, and the warnings a reader must see first.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::bootstrap::Bootstrap;
use crate::context::RunContext;
use crate::control::ServerMetrics;
use crate::control::ServerReading;
use crate::counters::CounterSnapshot;
use crate::loop_lag::LoopLagReport;
use crate::recorder::Histograms;
use crate::resources::{self, ProcSample};
use crate::results::{
    ClientCounts, Delivery, EncodedHistogram, GeneratorError, LatencyResult, LatencyStats, Outcome,
    PollStats, ProcessUsage, Requests, Resources, RunResult, ScheduleStats, ThreadCpuUsage,
    ThreadLag, Timings, Traffic, TrafficWindow, Warning,
};
use crate::scenario::StrategySpec;
use crate::strategy::Strategy;
use crate::thread_cpu::ThreadUsage;

/// Generator CPU above this share of all cores flags the run as saturated.
const SATURATED_CPU_SHARE: f64 = 0.8;
/// Achieved send or poll rate below this share of plan flags the run as saturated.
const RATE_FLOOR: f64 = 0.99;
/// Other processes using more than this much CPU (100 = one core) disturb the measurement.
const OTHER_CPU_WARN_PERCENT: f64 = 20.0;
/// Fewer measured probes than this make tail percentiles meaningless (pairs of one probe are
/// not independent: they share its send and its fan-out).
const FEW_SAMPLES: u64 = 100;
/// One generator thread busier than this (100 = one core) was a bottleneck.
const THREAD_SATURATED_PERCENT: f64 = 90.0;
/// The generator's own lag may be at most this share of the fastest p50 it measures.
const LAG_SHARE: f64 = 0.1;
/// More late sends or late poll ticks than this share flags the run…
const LATE_SHARE: f64 = 0.01;
/// …when there are at least this many of them.
const MIN_LATE: u64 = 3;
/// Confidence level and resamples of the percentile intervals.
const CI_LEVEL: f64 = 0.95;
const CI_RESAMPLES: u32 = 1_000;
/// Threads listed per run, busiest first.
const THREADS_LISTED: usize = 8;

/// Everything the driver measured, before it becomes a [`RunResult`].
pub struct RunFacts {
    pub timings: Timings,
    pub clients: ClientCounts,
    /// Counter deltas over the measured window.
    pub window: CounterSnapshot,
    pub window_seconds: f64,
    pub planned_sends: u64,
    pub planned_polls: u64,
    pub generator: ProcessUsage,
    pub server: ServerSide,
    /// The server's memory per connection (its process known to /proc only).
    pub server_memory: Option<crate::results::ServerMemory>,
    /// CPU used by other processes during the window (100 = one core), when measurable.
    pub other_cpu_percent: Option<f64>,
    pub outcome: Outcome,
    pub target: String,
    /// Windows in which the target did not answer its health checks.
    pub outages: Vec<crate::results::OutageWindow>,
    /// Runtime wait of handed-over tasks over the window.
    pub loop_lag: Option<LoopLagReport>,
    /// The generator's threads over the window, busiest first.
    pub threads: Vec<ThreadUsage>,
    /// Seeds the bootstrap's resampling.
    pub seed: u64,
}

/// The server's usage, and where it was read.
pub enum ServerSide {
    Proc(ProcessUsage),
    Metrics(ProcessUsage),
    Unavailable,
}

impl ServerSide {
    pub fn from_snapshots(
        from: &ServerReading,
        to: &ServerReading,
        end: Option<ProcSample>,
        window: Duration,
    ) -> ServerSide {
        match (from, to) {
            (ServerReading::Proc(a), ServerReading::Proc(b)) => {
                let end = end.unwrap_or(*b);
                ServerSide::Proc(ProcessUsage {
                    peak_rss_bytes: end.peak_rss_bytes.max(b.peak_rss_bytes),
                    ..resources::usage_between(*a, *b, window)
                })
            }
            (ServerReading::Metrics(a), ServerReading::Metrics(b)) => metrics_usage(a, b, window),
            _ => ServerSide::Unavailable,
        }
    }

    fn into_parts(self) -> (Option<ProcessUsage>, &'static str) {
        match self {
            ServerSide::Proc(u) => (Some(u), "proc"),
            ServerSide::Metrics(u) => (Some(u), "metrics"),
            ServerSide::Unavailable => (None, "unavailable"),
        }
    }
}

fn metrics_usage(a: &ServerMetrics, b: &ServerMetrics, window: Duration) -> ServerSide {
    match (a.cpu_seconds, b.cpu_seconds) {
        (Some(ca), Some(cb)) => {
            let cpu_seconds = (cb - ca).max(0.0);
            ServerSide::Metrics(ProcessUsage {
                cpu_seconds,
                cpu_percent: crate::results::ratio(cpu_seconds, window.as_secs_f64()) * 100.0,
                peak_rss_bytes: a.rss_bytes.max(b.rss_bytes).unwrap_or(0),
            })
        }
        _ => ServerSide::Unavailable,
    }
}

/// How the run ended: the server's death beats an interrupt, which beats an empty run.
pub fn outcome(server_died: Option<String>, interrupted: bool, connected: u64) -> Outcome {
    match server_died {
        Some(detail) => Outcome::ServerDied { detail },
        None if interrupted => Outcome::Interrupted,
        None if connected == 0 => Outcome::Failed {
            detail: "no receiver could connect: see errors (connect) and the server's log".into(),
        },
        None => Outcome::Completed,
    }
}

pub fn assemble(
    ctx: &RunContext,
    spec: &StrategySpec,
    strategy: &Strategy,
    mut facts: RunFacts,
) -> RunResult {
    let delivery = ctx.recorder.delivery(&ctx.counters);
    let h = ctx.recorder.histograms();
    let latency = latency(&h, facts.seed);
    let traffic = traffic(ctx, &facts);
    let schedule = schedule(ctx, &facts, &delivery);
    let generator_error = generator_error(&h, &facts);
    let polls =
        matches!(strategy, Strategy::Poll(_) | Strategy::Longpoll { .. }).then(|| PollStats {
            answer_time: LatencyStats::from_histogram(&h.poll_answer),
            stale_answers: ctx.recorder.stale_answers(),
        });
    let (server, server_source) =
        std::mem::replace(&mut facts.server, ServerSide::Unavailable).into_parts();
    let resources = Resources {
        generator: facts.generator.clone(),
        server,
        server_source: server_source.to_string(),
        server_memory: facts.server_memory.take(),
    };
    let mut warnings = warnings(
        ctx, &facts, &delivery, &latency, &schedule, &resources, strategy,
    );
    warnings.extend(generator_warnings(
        &generator_error,
        &schedule,
        latency.corrected.p50_us,
        latency.corrected.p50_us,
    ));
    if !facts.outages.is_empty() {
        warnings.push(Warning::TargetOutage {
            count: facts.outages.len() as u64,
            longest_ms: facts
                .outages
                .iter()
                .map(|o| o.to_ms - o.from_ms)
                .fold(0.0, f64::max),
            log_restarts_seen: ctx.counters.log_restarts.load(Relaxed),
        });
    }
    if let Some(p) = polls.as_ref().filter(|p| p.stale_answers > 0) {
        warnings.push(Warning::StaleAnswers {
            count: p.stale_answers,
        });
    }
    RunResult {
        nodes: ctx.nodes.results(&ctx.recorder),
        label: spec.label(),
        strategy: spec.clone(),
        target: facts.target.clone(),
        outcome: facts.outcome.clone(),
        timings: facts.timings.clone(),
        clients: facts.clients.clone(),
        latency,
        delivery,
        traffic,
        schedule,
        resources,
        generator_error,
        polls,
        outages: crate::results::Outages {
            windows: facts.outages.clone(),
            log_restarts_seen: ctx.counters.log_restarts.load(Relaxed),
        },
        saturated: warnings.iter().any(Warning::is_saturation),
        warnings,
    }
}

fn latency(h: &Histograms, seed: u64) -> LatencyResult {
    // Serializing into memory cannot fail: the only errors are I/O errors of the writer.
    let encode = |h| EncodedHistogram::encode(h).expect("histograms serialize into memory");
    let spec = Bootstrap {
        level: CI_LEVEL,
        resamples: CI_RESAMPLES,
        seed,
    };
    // Fewer than two probes have no interval: the run says so with `too_few_samples`.
    let intervals = h
        .by_probe
        .intervals(&[0.5, 0.99], &spec)
        .unwrap_or_default();
    LatencyResult {
        corrected: LatencyStats::with_censored(&h.corrected, h.censored, h.censored_from_us),
        uncorrected: LatencyStats::with_censored(&h.uncorrected, h.censored, None),
        fanout: LatencyStats::with_censored(&h.fanout, 0, h.fanout_censored_from_us),
        histogram_corrected: encode(&h.corrected),
        histogram_uncorrected: encode(&h.uncorrected),
        histogram_fanout: encode(&h.fanout),
        probes: h.by_probe.probes() as u64,
        intervals,
    }
}

fn generator_error(h: &Histograms, facts: &RunFacts) -> GeneratorError {
    let (loop_lag, loop_lag_period_ms, loop_lag_threads) = match &facts.loop_lag {
        Some(r) => (
            LatencyStats::from_histogram(&r.all),
            r.period.as_secs_f64() * 1000.0,
            r.per_thread
                .iter()
                .map(|(thread, h)| ThreadLag {
                    thread: thread.clone(),
                    lag: LatencyStats::from_histogram(h),
                })
                .collect(),
        ),
        None => (LatencyStats::default(), 0.0, Vec::new()),
    };
    GeneratorError {
        send_lag: LatencyStats::from_histogram(&h.send_lag),
        poll_lag: LatencyStats::from_histogram(&h.poll_lag),
        loop_lag,
        loop_lag_period_ms,
        loop_lag_threads,
        threads: facts
            .threads
            .iter()
            .take(THREADS_LISTED)
            .map(|t| ThreadCpuUsage {
                thread: t.name.clone(),
                cpu_percent: t.cpu_percent,
            })
            .collect(),
    }
}

/// Warnings about the generator's own error, against `fastest_p50_us`: the fastest median
/// latency it measured (this run's, or in a sweep the fastest run's).
pub fn generator_warnings(
    g: &GeneratorError,
    schedule: &ScheduleStats,
    fastest_p50_us: u64,
    own_p50_us: u64,
) -> Vec<Warning> {
    let mut w = Vec::new();
    if let Some(t) = g
        .threads
        .iter()
        .find(|t| t.cpu_percent > THREAD_SATURATED_PERCENT)
    {
        w.push(Warning::ThreadSaturated {
            thread: t.thread.clone(),
            cpu_percent: t.cpu_percent,
        });
    }
    let bound_us = (fastest_p50_us as f64 * LAG_SHARE) as u64;
    for (source, stats) in [("send lag", &g.send_lag), ("loop lag", &g.loop_lag)] {
        if fastest_p50_us > 0 && stats.count > 0 && stats.p99_us > bound_us {
            w.push(Warning::GeneratorLag {
                source: source.to_string(),
                p99_us: stats.p99_us,
                bound_us: fastest_p50_us,
            });
        }
    }
    // A share, and more than a hiccup: one late send in a 20-send run is the OS, not a
    // generator that cannot keep its schedule. And, as for polls below, noticeable: latency is
    // measured from the intended instant, so a late send adds its lateness to one probe's
    // figure, which matters against the fastest latency measured, not against 2 ms.
    let sends_noticeable = g.send_lag.p99_us as f64 > LAG_SHARE * fastest_p50_us as f64;
    if schedule.late_sends >= MIN_LATE
        && schedule.late_sends as f64 > LATE_SHARE * schedule.planned_sends as f64
        && sends_noticeable
    {
        w.push(Warning::LateSends {
            late: schedule.late_sends,
            planned: schedule.planned_sends,
        });
    }
    // A late poll tick delays what that poll fetches by its lateness: it matters against the
    // poll's own latency (about T/2), not push's.
    let ticks = schedule.achieved_polls;
    let noticeable = g.poll_lag.p99_us as f64 > LAG_SHARE * own_p50_us as f64;
    if ticks > 0 && schedule.late_polls as f64 > LATE_SHARE * ticks as f64 && noticeable {
        w.push(Warning::LatePolls {
            late: schedule.late_polls,
            ticks,
            p99_us: g.poll_lag.p99_us,
        });
    }
    w
}

fn traffic(ctx: &RunContext, facts: &RunFacts) -> Traffic {
    let c = &ctx.counters;
    let (rx_up, rx_down) = c.receiver_wire.snapshot();
    let (tx_up, tx_down) = c.sender_wire.snapshot();
    let (ctl_up, ctl_down) = c.control_wire.snapshot();
    let w = &facts.window;
    Traffic {
        requests: Requests {
            receiver_requests: c.receiver_requests.load(Relaxed),
            empty_polls: c.empty_polls.load(Relaxed),
            not_modified: c.not_modified.load(Relaxed),
            posts: c.posts.load(Relaxed),
            errors: c.errors_by_kind(),
            control_bytes_up: ctl_up,
            control_bytes_down: ctl_down,
        },
        bytes_up: rx_up + tx_up,
        bytes_down: rx_down + tx_down,
        receiver_bytes: rx_up + rx_down,
        connections_opened: c.receiver_wire.connections.load(Relaxed)
            + c.sender_wire.connections.load(Relaxed),
        deliveries: c.deliveries.load(Relaxed),
        measured: TrafficWindow {
            seconds: facts.window_seconds,
            receiver_requests: w.receiver_requests,
            empty_polls: w.empty_polls,
            receiver_bytes_up: w.receiver_bytes_up,
            receiver_bytes_down: w.receiver_bytes_down,
            deliveries: w.deliveries,
        },
        wire: if ctx.target.access.tls.is_some() {
            crate::results::Wire::Tls
        } else {
            crate::results::Wire::Plain
        },
    }
}

fn schedule(ctx: &RunContext, facts: &RunFacts, delivery: &Delivery) -> ScheduleStats {
    let c = &ctx.counters;
    ScheduleStats {
        planned_sends: facts.planned_sends,
        // From the probe table: exact, unlike a counter snapshot racing the send due at the
        // window's first instant.
        achieved_sends: delivery.probes_sent,
        failed_sends: delivery.probes_failed + delivery.probes_unanswered,
        late_sends: ctx.recorder.late_sends(),
        planned_polls: facts.planned_polls,
        achieved_polls: if facts.planned_polls > 0 {
            facts.window.poll_ticks
        } else {
            0
        },
        skipped_polls: c.skipped_polls.load(Relaxed),
        late_polls: c.late_polls.load(Relaxed),
    }
}

/// CPU saturation: the generator alone, or the generator plus a server that shares this
/// machine (`server_source` `proc`: a child or a local process), above 80% of all cores.
fn cpu_warnings(resources: &Resources, cores: usize) -> Vec<Warning> {
    let capacity = SATURATED_CPU_SHARE * 100.0 * cores as f64;
    let generator = resources.generator.cpu_percent;
    if generator > capacity {
        return vec![Warning::GeneratorSaturated {
            cpu_percent: generator,
            cores,
        }];
    }
    match &resources.server {
        Some(server)
            if resources.server_source == "proc" && generator + server.cpu_percent > capacity =>
        {
            vec![Warning::MachineSaturated {
                generator_percent: generator,
                server_percent: server.cpu_percent,
                cores,
            }]
        }
        _ => Vec::new(),
    }
}

fn warnings(
    ctx: &RunContext,
    facts: &RunFacts,
    delivery: &Delivery,
    latency: &LatencyResult,
    schedule: &ScheduleStats,
    resources: &Resources,
    strategy: &Strategy,
) -> Vec<Warning> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut w = cpu_warnings(resources, cores);
    let completed = facts.outcome == Outcome::Completed;
    if completed && schedule.send_ratio() < RATE_FLOOR {
        w.push(Warning::SendRateBelowPlan {
            achieved_ratio: schedule.send_ratio(),
        });
    }
    if completed && matches!(strategy, Strategy::Poll(_)) && schedule.poll_ratio() < RATE_FLOOR {
        w.push(Warning::PollRateBelowPlan {
            achieved_ratio: schedule.poll_ratio(),
        });
    }
    if latency.probes < FEW_SAMPLES {
        w.push(Warning::TooFewSamples {
            count: latency.probes,
        });
    }
    if schedule.failed_sends > 0 {
        w.push(Warning::FailedSends {
            failed: schedule.failed_sends,
            planned: schedule.planned_sends,
        });
    }
    if facts.clients.failed > 0 {
        w.push(Warning::ClientsFailed {
            failed: facts.clients.failed,
            planned: facts.clients.planned,
        });
    }
    if delivery.missing > 0 {
        w.push(Warning::MessagesLost {
            missing: delivery.missing,
            expected: delivery.expected,
        });
    }
    if resources.server.is_none() {
        w.push(Warning::ServerUsageUnavailable);
    }
    if let Some(other) = facts
        .other_cpu_percent
        .filter(|p| *p > OTHER_CPU_WARN_PERCENT)
    {
        w.push(Warning::OtherCpuLoad { cpu_percent: other });
    }
    if ctx.fell_back_to_full_list.load(Relaxed) {
        w.push(Warning::FellBackToFullList);
    }
    w
}

#[cfg(test)]
mod generator_warning_tests {
    use super::*;

    fn stats(p99_us: u64) -> LatencyStats {
        LatencyStats {
            count: 100,
            p50_us: p99_us / 2,
            p99_us,
            ..LatencyStats::default()
        }
    }

    #[test]
    fn a_quiet_generator_raises_nothing() {
        let g = GeneratorError {
            send_lag: stats(40),
            loop_lag: stats(90),
            threads: vec![ThreadCpuUsage {
                thread: "loadgen-wrk-0".into(),
                cpu_percent: 30.0,
            }],
            ..GeneratorError::default()
        };
        let s = ScheduleStats {
            planned_sends: 200,
            late_sends: 2,
            achieved_polls: 1_000,
            late_polls: 10,
            ..ScheduleStats::default()
        };
        assert!(generator_warnings(&g, &s, 4_000, 4_000).is_empty());
    }

    #[test]
    fn a_pinned_thread_lag_and_lateness_are_each_flagged() {
        let g = GeneratorError {
            send_lag: stats(500),
            loop_lag: stats(30_000),
            poll_lag: stats(3_000),
            threads: vec![ThreadCpuUsage {
                thread: "loadgen-wrk-1".into(),
                cpu_percent: 97.0,
            }],
            ..GeneratorError::default()
        };
        let s = ScheduleStats {
            planned_sends: 200,
            late_sends: 3,
            achieved_polls: 1_000,
            late_polls: 11,
            ..ScheduleStats::default()
        };
        let w = generator_warnings(&g, &s, 4_000, 20_000);
        let kinds: Vec<String> = w
            .iter()
            .map(|w| serde_json::to_value(w).expect("json")["kind"].to_string())
            .collect();
        assert_eq!(
            kinds,
            [
                "\"thread_saturated\"",
                "\"generator_lag\"",
                "\"generator_lag\"",
                "\"late_sends\"",
                "\"late_polls\""
            ],
            "{w:?}"
        );
        assert!(w.iter().all(Warning::is_saturation));
        // The same late ticks beside a 2.5 s poll latency are not a noticeable share of it.
        let w = generator_warnings(&g, &s, 4_000, 2_500_000);
        assert!(
            !w.iter().any(|w| matches!(w, Warning::LatePolls { .. })),
            "{w:?}"
        );
        // The same late sends beside a 400 ms fastest latency are not a noticeable share of it.
        let w = generator_warnings(&g, &s, 400_000, 20_000);
        assert!(
            !w.iter().any(|w| matches!(w, Warning::LateSends { .. })),
            "{w:?}"
        );
    }
}

#[cfg(test)]
mod cpu_warning_tests {
    use super::*;

    fn resources(generator: f64, server: Option<f64>, source: &str) -> Resources {
        let usage = |cpu_percent| ProcessUsage {
            cpu_percent,
            ..ProcessUsage::default()
        };
        Resources {
            generator: usage(generator),
            server: server.map(usage),
            server_source: source.into(),
            server_memory: None,
        }
    }

    #[test]
    fn a_busy_generator_alone_is_flagged() {
        let w = cpu_warnings(&resources(170.0, Some(10.0), "proc"), 2);
        assert!(
            matches!(w.as_slice(), [Warning::GeneratorSaturated { .. }]),
            "{w:?}"
        );
    }

    #[test]
    fn generator_and_local_server_together_are_flagged() {
        let w = cpu_warnings(&resources(79.0, Some(116.0), "proc"), 2);
        assert!(
            matches!(w.as_slice(), [Warning::MachineSaturated { .. }]),
            "{w:?}"
        );
        assert!(w[0].is_saturation());
    }

    #[test]
    fn a_remote_server_or_a_quiet_machine_is_not_flagged() {
        assert!(cpu_warnings(&resources(79.0, Some(116.0), "metrics"), 2).is_empty());
        assert!(cpu_warnings(&resources(40.0, Some(60.0), "proc"), 2).is_empty());
        assert!(cpu_warnings(&resources(40.0, None, "unavailable"), 2).is_empty());
    }
}
