//! Views derived from [`Results`] at render time: the polling model, ratios to push,
//! per-delivery costs. Never stored; every exporter computes them the same way from here.

use hdrhistogram::Histogram;

use super::ReportError;
use crate::results::{Outcome, Results, RunResult};
use crate::scenario::{Arrivals, Scenario, StrategyKind};

/// The results being reported, with each run's histogram decoded once.
pub struct ReportView<'a> {
    pub results: &'a Results,
    pub runs: Vec<RunView<'a>>,
}

/// One run plus what reports derive from it.
pub struct RunView<'a> {
    pub run: &'a RunResult,
    pub scenario: &'a Scenario,
    /// For side-by-side reports (`A:poll@1s`): the folder or target the run came from.
    pub source: Option<&'a str>,
    /// The strategy label without the source prefix (`poll@1s`).
    pub name: &'a str,
    /// Corrected delivery latency, µs.
    pub corrected: Histogram<u64>,
}

/// Preference order for the push strategy that ratios are taken against.
const REFERENCE_PUSH: [StrategyKind; 4] = [
    StrategyKind::Socketio,
    StrategyKind::Sse,
    StrategyKind::SocketioPolling,
    StrategyKind::Longpoll,
];

impl<'a> ReportView<'a> {
    pub fn new(results: &'a Results) -> Result<Self, ReportError> {
        let runs = results
            .runs
            .iter()
            .map(|run| RunView::new(run, &results.scenario))
            .collect::<Result<_, _>>()?;
        Ok(ReportView { results, runs })
    }

    /// Sources in order of first appearance (`[None]` for a plain sweep).
    pub fn all_completed(&self) -> bool {
        self.runs.iter().all(RunView::completed)
    }

    pub fn sources(&self) -> Vec<Option<&'a str>> {
        let mut out: Vec<Option<&str>> = Vec::new();
        for r in &self.runs {
            if !out.contains(&r.source) {
                out.push(r.source);
            }
        }
        out
    }

    pub fn is_side_by_side(&self) -> bool {
        self.runs.iter().any(|r| r.source.is_some())
    }

    /// The push run of the same source that ratios are taken against: Socket.IO if it delivered,
    /// else SSE, else Socket.IO polling, else long-poll.
    pub fn reference_push(&self, source: Option<&str>) -> Option<&RunView<'a>> {
        REFERENCE_PUSH.iter().find_map(|kind| {
            self.runs
                .iter()
                .find(|r| r.source == source && r.run.strategy.kind == *kind && r.has_deliveries())
        })
    }

    /// Poll runs of one source, by increasing interval.
    pub fn polls(&self, source: Option<&str>) -> Vec<&RunView<'a>> {
        let mut polls: Vec<_> = self
            .runs
            .iter()
            .filter(|r| r.source == source && r.interval_s().is_some())
            .collect();
        polls.sort_by(|a, b| {
            let key = |r: &&RunView| r.interval_s().unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        polls
    }

    /// Push runs of one source, in run order.
    pub fn pushes(&self, source: Option<&str>) -> Vec<&RunView<'a>> {
        self.runs
            .iter()
            .filter(|r| r.source == source && r.is_push())
            .collect()
    }

    /// `x` of this run divided by `x` of the reference push run, when both are positive.
    pub fn ratio_to_push(&self, run: &RunView<'_>, x: impl Fn(&RunView<'_>) -> f64) -> Option<f64> {
        let reference = self.reference_push(run.source)?;
        let (a, b) = (x(run), x(reference));
        (a > 0.0 && b > 0.0).then(|| a / b)
    }
}

impl<'a> RunView<'a> {
    fn new(run: &'a RunResult, scenario: &'a Scenario) -> Result<Self, ReportError> {
        let corrected =
            run.latency
                .histogram_corrected
                .decode()
                .map_err(|source| ReportError::Histogram {
                    label: run.label.clone(),
                    source,
                })?;
        let (source, name) = match run.label.split_once(':') {
            Some((s, n)) => (Some(s), n),
            None => (None, run.label.as_str()),
        };
        Ok(RunView {
            run,
            scenario,
            source,
            name,
            corrected,
        })
    }

    /// The run went through every phase (not failed, not cut short by a dead server or Ctrl-C),
    /// so its counts can be held against the model.
    pub fn completed(&self) -> bool {
        self.run.outcome == Outcome::Completed
    }

    pub fn label(&self) -> &str {
        &self.run.label
    }

    pub fn is_push(&self) -> bool {
        self.run.strategy.kind.is_push()
    }

    /// Polling interval T in seconds (poll runs only).
    pub fn interval_s(&self) -> Option<f64> {
        match self.run.strategy.kind {
            StrategyKind::Poll => self.run.strategy.interval.map(|t| t.as_secs_f64()),
            _ => None,
        }
    }

    pub fn has_deliveries(&self) -> bool {
        self.run.latency.corrected.count > 0
    }

    pub fn p50_ms(&self) -> f64 {
        self.run.latency.corrected.p50_us as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.run.latency.corrected.p99_us as f64 / 1000.0
    }

    /// Model p50 for polling, uniform phases: T/2 (the one-way delay is left out: it is
    /// what the push rows measure).
    pub fn model_p50_ms(&self) -> Option<f64> {
        self.interval_s()
            .map(|t| t * 1000.0 * 0.5 + self.server_share_ms().unwrap_or(0.0))
    }

    /// Model p99 for polling: 0.99·T plus the measured server share.
    pub fn model_p99_ms(&self) -> Option<f64> {
        self.interval_s()
            .map(|t| t * 1000.0 * 0.99 + self.server_share_ms().unwrap_or(0.0))
    }

    /// The server's share of a poll: the measured request-to-answer time, p50 (poll only).
    /// It is the `d` of the model (latency ≈ d + Uniform(0, T)), measured, not assumed.
    pub fn server_share_ms(&self) -> Option<f64> {
        self.run
            .polls
            .as_ref()
            .filter(|p| p.answer_time.count > 0)
            .map(|p| p.answer_time.p50_us as f64 / 1000.0)
    }

    /// The 95 % interval of the corrected latency at `quantile`, ms, widened where needed to
    /// hold the histogram's own value: the bootstrap resamples buckets 0.8 % wide, so its ends
    /// can sit that far from HdrHistogram's 0.1 % value (and collapse to one bucket when every
    /// probe agrees).
    pub fn interval_ms(&self, quantile: f64) -> Option<(f64, f64)> {
        let i = self.run.latency.interval(quantile)?;
        let point = self.corrected.value_at_quantile(quantile);
        let low = i.low_us.min(point);
        let high = i.high_us.max(point);
        Some((low as f64 / 1000.0, high as f64 / 1000.0))
    }

    /// Model empty-poll ratio: every receiver gets every message, λ = the scenario rate, and a
    /// poll window of length T at a random phase holds no message with probability
    /// max(0, 1 − λT) for evenly spaced sends, e^(−λT) for Poisson arrivals (DESIGN §4).
    pub fn model_empty_ratio(&self) -> Option<f64> {
        let lambda = self.scenario.rate;
        self.interval_s().map(|t| match self.scenario.arrivals {
            Arrivals::Even => (1.0 - lambda * t).max(0.0),
            Arrivals::Poisson => (-lambda * t).exp(),
        })
    }

    pub fn requests_per_second(&self) -> f64 {
        self.run.traffic.measured.requests_per_second()
    }

    pub fn bytes_per_delivery(&self) -> f64 {
        self.run.traffic.measured.bytes_per_delivery()
    }

    pub fn requests_per_delivery(&self) -> f64 {
        self.run.traffic.measured.requests_per_delivery()
    }

    pub fn empty_poll_ratio(&self) -> f64 {
        self.run.traffic.measured.empty_poll_ratio()
    }

    /// Server CPU milliseconds spent per 1,000 delivered messages (None when unmeasured).
    pub fn server_cpu_ms_per_1000(&self) -> Option<f64> {
        let server = self.run.resources.server.as_ref()?;
        let deliveries = self.run.traffic.measured.deliveries;
        (deliveries > 0).then(|| server.cpu_seconds * 1e6 / deliveries as f64)
    }

    pub fn server_cpu_percent(&self) -> Option<f64> {
        self.run.resources.server.as_ref().map(|s| s.cpu_percent)
    }

    pub fn server_memory_bytes(&self) -> Option<f64> {
        self.run
            .resources
            .server
            .as_ref()
            .map(|s| s.peak_rss_bytes as f64)
    }

    /// `(peak RSS with the receivers connected − RSS before) / connections`, when the server's
    /// process was readable.
    pub fn server_memory_per_connection(&self) -> Option<f64> {
        let m = self.run.resources.server_memory.as_ref()?;
        Some(m.per_connection_bytes)
    }

    pub fn errors(&self) -> u64 {
        self.run.traffic.requests.errors.values().sum()
    }

    /// Short flags a reader must see next to the numbers (rendered in bold).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        match &self.run.outcome {
            Outcome::Completed => {}
            Outcome::Interrupted => flags.push("interrupted".to_string()),
            Outcome::ServerDied { .. } => flags.push("server died".to_string()),
            Outcome::Failed { .. } => flags.push("failed".to_string()),
        }
        if self.run.saturated || self.run.warnings.iter().any(|w| w.is_saturation()) {
            flags.push("saturated".to_string());
        }
        if self.run.delivery.missing > 0 {
            flags.push("lost messages".to_string());
        }
        if self.run.schedule.failed_sends > 0 {
            flags.push("failed sends".to_string());
        }
        if self.run.polls.as_ref().is_some_and(|p| p.stale_answers > 0) {
            flags.push("stale answers".to_string());
        }
        if !self.run.outages.windows.is_empty() {
            flags.push("target outage".to_string());
        }
        flags
    }
}
