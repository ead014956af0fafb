//! "Findings": a few plain sentences computed from the numbers, so the reader does not have
//! to do the division. Each function returns zero or more sentences; none is stored.

use super::units::{bytes, ms, number, percent, thousands, times};
use super::view::{ReportView, RunView};
use crate::results::{Outcome, ratio};
use crate::scenario::Arrivals;

/// Departure from the polling model above which a finding says it needs explaining (used only
/// when a run has no confidence interval, e.g. results from before intervals existed).
const MODEL_TOLERANCE: f64 = 0.25;
/// Systematic slack of the model check: the poll schedule's timer granularity (tokio wakes on
/// a 1 ms grid, so a tick starts up to ~1 ms late) and the generator's own delay.
const MODEL_SLACK_MS: f64 = 2.0;
const MODEL_SLACK_OF_T: f64 = 0.02;

/// Every finding, in reading order.
pub fn findings(view: &ReportView<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for source in view.sources() {
        let prefix = source.map(|s| format!("[{s}] ")).unwrap_or_default();
        let mut add = |sentences: Vec<String>| {
            out.extend(sentences.into_iter().map(|s| format!("{prefix}{s}")));
        };
        add(polling_vs_push(view, source));
        add(model_checks(view, source));
        add(request_rates(view, source));
        add(batching(view, source));
        add(request_cost(view, source));
        add(extremes(view, source));
    }
    out.extend(loss(view));
    out.extend(trouble(view));
    out
}

fn interval_text(r: &RunView<'_>) -> String {
    r.run
        .strategy
        .interval
        .map(crate::scenario::format_duration)
        .unwrap_or_default()
}

/// "Polling at 1s is 23× slower at p50 … and uses 41× the bytes per delivered message of socketio."
fn polling_vs_push(view: &ReportView<'_>, source: Option<&str>) -> Vec<String> {
    let Some(push) = view.reference_push(source) else {
        return Vec::new();
    };
    view.polls(source)
        .into_iter()
        .filter(|p| p.has_deliveries())
        .map(|p| {
            let slower = view.ratio_to_push(p, |x| x.p50_ms());
            let heavier = view.ratio_to_push(p, |x| x.bytes_per_delivery());
            let speed = match slower {
                Some(x) if x >= 1.0 => format!("{} slower at p50", times(x)),
                Some(x) => format!("{} as slow at p50", times(x)),
                None => "not comparable at p50".into(),
            };
            let cost = heavier.map_or_else(String::new, |x| {
                format!(
                    " and uses {} the bytes per delivered message ({} vs {})",
                    times(x),
                    bytes(p.bytes_per_delivery()),
                    bytes(push.bytes_per_delivery())
                )
            });
            format!(
                "Polling at {} is {} ({} ms vs {} ms){} of {}.",
                interval_text(p),
                speed,
                ms(p.p50_ms()),
                ms(push.p50_ms()),
                cost,
                push.name
            )
        })
        .collect()
}

/// "poll@1s p50 523 ms vs model 510 ms …": the measurement held against the model
/// d + Uniform(0, T), where d is the server's share of a poll as measured (request to answer),
/// not assumed. The tolerance is sized to the sample: the model must fall inside the
/// percentile's 95 % bootstrap interval (resampled over probes), widened by [`MODEL_SLACK_MS`]
/// plus [`MODEL_SLACK_OF_T`] of T for the generator's own timer; without an interval, the
/// departure must stay within [`MODEL_TOLERANCE`].
fn model_checks(view: &ReportView<'_>, source: Option<&str>) -> Vec<String> {
    view.polls(source)
        .into_iter()
        .filter(|p| p.has_deliveries())
        .filter_map(|p| {
            let (m50, m99) = (p.model_p50_ms()?, p.model_p99_ms()?);
            let t_ms = p.interval_s()? * 1000.0;
            let receivers = p.run.clients.connected;
            let slack = |q: f64| {
                MODEL_SLACK_MS + MODEL_SLACK_OF_T * t_ms + phase_tolerance_ms(q, receivers, t_ms)
            };
            let holds = |q: f64, measured: f64, model: f64| match p.interval_ms(q) {
                Some((lo, hi)) => model >= lo - slack(q) && model <= hi + slack(q),
                None => ((measured - model) / model).abs() <= MODEL_TOLERANCE,
            };
            let ok = holds(0.5, p.p50_ms(), m50) && holds(0.99, p.p99_ms(), m99);
            let band = |q: f64| {
                p.interval_ms(q).map_or_else(String::new, |(lo, hi)| {
                    format!(" [95% CI {}–{}]", ms(lo), ms(hi))
                })
            };
            let share = p
                .server_share_ms()
                .map_or_else(String::new, |d| format!(" + measured server share {} ms", ms(d)));
            let verdict = if ok {
                ", as the model predicts".to_string()
            } else {
                format!(
                    " — the model FAILS (outside the interval ± {} ms at p50, ± {} ms at p99): queueing in the generator or server, stale answers, or a bug",
                    ms(slack(0.5)),
                    ms(slack(0.99))
                )
            };
            Some(format!(
                "Model check (T/2{share}): {} p50 {} ms{} vs model {} ms, p99 {} ms{} vs model {} ms{}.",
                p.name,
                ms(p.p50_ms()),
                band(0.5),
                ms(m50),
                ms(p.p99_ms()),
                band(0.99),
                ms(m99),
                verdict
            ))
        })
        .collect()
}

/// How far the q-quantile of the run's latencies may sit from the model's because the N
/// receivers' poll phases are a sample of Uniform(0, T), not the distribution itself: two
/// standard errors of a sample quantile, T·√(q(1−q)/N), plus the gap between neighbouring
/// order statistics, T/(N+1). (The bootstrap resamples probes, not receivers, so its interval
/// does not hold this part.) Half a percent of T at 500 receivers; tens of ms for 15 at T = 200 ms.
fn phase_tolerance_ms(q: f64, receivers: u64, t_ms: f64) -> f64 {
    let n = receivers.max(1) as f64;
    t_ms * (2.0 * (q * (1.0 - q) / n).sqrt() + 1.0 / (n + 1.0))
}

/// Requests per second against the model N/T, and empty polls against the model (see
/// [`RunView::model_empty_ratio`]): one sentence each for all poll runs.
fn request_rates(view: &ReportView<'_>, source: Option<&str>) -> Vec<String> {
    let clients = view.results.scenario.clients.get() as f64;
    let polls = view.polls(source);
    let (mut rates, mut empties) = (Vec::new(), Vec::new());
    for p in polls.iter().filter(|p| p.completed()) {
        let (Some(t), Some(empty)) = (p.interval_s(), p.model_empty_ratio()) else {
            continue;
        };
        rates.push(format!(
            "{} {} (model {})",
            p.name,
            number(p.requests_per_second()),
            number(clients / t)
        ));
        empties.push(format!(
            "{} {} (model {})",
            p.name,
            percent(p.empty_poll_ratio()),
            percent(empty)
        ));
    }
    if rates.is_empty() {
        return Vec::new();
    }
    vec![
        format!(
            "Receiver requests/s against the model N/T, whatever the message rate: {}.",
            rates.join(", ")
        ),
        format!(
            "Empty poll answers against the model for {}: {}.",
            match view.results.scenario.arrivals {
                Arrivals::Even => "evenly spaced sends, max(0, 1 − λT)",
                Arrivals::Poisson => "Poisson arrivals, e^(−λT)",
            },
            empties.join(", ")
        ),
    ]
}

/// Long polling intervals batch messages: when a poll run costs fewer bytes per delivered
/// message than push, say why.
fn batching(view: &ReportView<'_>, source: Option<&str>) -> Vec<String> {
    let Some(push) = view.reference_push(source) else {
        return Vec::new();
    };
    view.polls(source)
        .into_iter()
        .filter(|p| p.has_deliveries())
        .filter(|p| view.ratio_to_push(p, |x| x.bytes_per_delivery()).is_some_and(|r| r < 1.0))
        .map(|p| {
            format!(
                "{} costs fewer bytes per delivered message than {} ({} vs {}): each answer carries {} messages on average, sharing one set of HTTP headers.",
                p.name,
                push.name,
                bytes(p.bytes_per_delivery()),
                bytes(push.bytes_per_delivery()),
                number(ratio(1.0, p.requests_per_delivery()))
            )
        })
        .collect()
}

/// Bytes per poll round trip, held against the published browser anchor (DESIGN §4: 871 bytes
/// of headers per poll, Lubbers & Greco).
fn request_cost(view: &ReportView<'_>, source: Option<&str>) -> Vec<String> {
    let per_request: Vec<String> = view
        .polls(source)
        .into_iter()
        .filter(|p| p.run.traffic.measured.receiver_requests > 0)
        .map(|p| {
            let m = &p.run.traffic.measured;
            let total = (m.receiver_bytes_up + m.receiver_bytes_down) as f64;
            format!(
                "{} {}",
                p.name,
                bytes(ratio(total, m.receiver_requests as f64))
            )
        })
        .collect();
    if per_request.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "Bytes on the wire per poll round trip (request and answer, headers and messages): {}. For comparison, Lubbers & Greco measured 871 B of HTTP headers alone per browser poll; this generator sends minimal headers.",
        per_request.join(", ")
    )]
}

/// Fastest and cheapest strategies, and server CPU per delivery.
fn extremes(view: &ReportView<'_>, source: Option<&str>) -> Vec<String> {
    let runs: Vec<&RunView<'_>> = view
        .runs
        .iter()
        .filter(|r| r.source == source && r.has_deliveries())
        .collect();
    if runs.len() < 2 {
        return Vec::new();
    }
    let by = |f: &dyn Fn(&RunView<'_>) -> f64| {
        let min = runs
            .iter()
            .min_by(|a, b| f(a).total_cmp(&f(b)))
            .expect("at least two runs");
        let max = runs
            .iter()
            .max_by(|a, b| f(a).total_cmp(&f(b)))
            .expect("at least two runs");
        (*min, *max)
    };
    let mut out = Vec::new();
    let (fast, slow) = by(&|r| r.p50_ms());
    out.push(format!(
        "Fastest at p50: {} ({} ms); slowest: {} ({} ms).",
        fast.name,
        ms(fast.p50_ms()),
        slow.name,
        ms(slow.p50_ms())
    ));
    let (cheap, dear) = by(&|r| r.bytes_per_delivery());
    out.push(format!(
        "Fewest bytes on the wire per delivered message: {} ({}); most: {} ({}).",
        cheap.name,
        bytes(cheap.bytes_per_delivery()),
        dear.name,
        bytes(dear.bytes_per_delivery())
    ));
    let cpu: Vec<_> = runs
        .iter()
        .filter_map(|r| r.server_cpu_ms_per_1000().map(|c| (r.name, c)))
        .collect();
    if let (Some(lo), Some(hi)) = (
        cpu.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
        cpu.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
    ) && lo.0 != hi.0
    {
        out.push(format!(
            "Server CPU per 1,000 deliveries: lowest {} ({} CPU-ms), highest {} ({} CPU-ms).",
            lo.0,
            number(lo.1),
            hi.0,
            number(hi.1)
        ));
    }
    out
}

fn loss(view: &ReportView<'_>) -> Vec<String> {
    // "Exactly once" must be true of every figure: nothing missing, doubled or reordered, and
    // no send failed (a failed send is a lost message even if nobody was owed it).
    let lossy: Vec<String> = view
        .runs
        .iter()
        .filter(|r| {
            let d = &r.run.delivery;
            d.missing > 0
                || d.duplicates > 0
                || d.out_of_order > 0
                || d.probes_failed > 0
                || d.probes_unanswered > 0
        })
        .map(|r| {
            let d = &r.run.delivery;
            let failed = d.probes_failed + d.probes_unanswered;
            format!(
                "{} missed {}, duplicated {} and reordered {} of {} expected deliveries{}",
                r.label(),
                thousands(d.missing as i64),
                thousands(d.duplicates as i64),
                thousands(d.out_of_order as i64),
                thousands(d.expected as i64),
                if failed > 0 {
                    format!(" ({} sends failed)", thousands(failed as i64))
                } else {
                    String::new()
                }
            )
        })
        .collect();
    if lossy.is_empty() {
        let completed: Vec<_> = view.runs.iter().filter(|r| r.completed()).collect();
        if completed.is_empty() {
            return Vec::new();
        }
        let expected: u64 = completed.iter().map(|r| r.run.delivery.expected).sum();
        let which = if completed.len() == view.runs.len() {
            "Every run".to_string()
        } else {
            format!(
                "Every completed run ({} of {})",
                completed.len(),
                view.runs.len()
            )
        };
        vec![format!(
            "{which} delivered every expected message exactly once ({} deliveries checked).",
            thousands(expected as i64)
        )]
    } else {
        vec![format!("Loss: {}.", lossy.join("; "))]
    }
}

/// Failed, interrupted and saturated runs: numbers to read with care.
fn trouble(view: &ReportView<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for r in &view.runs {
        match &r.run.outcome {
            Outcome::Completed => {}
            Outcome::Interrupted => out.push(format!(
                "{} was interrupted: its numbers cover only what was measured before Ctrl-C.",
                r.label()
            )),
            Outcome::ServerDied { detail } | Outcome::Failed { detail } => {
                out.push(format!("{} did not complete: {detail}.", r.label()))
            }
        }
    }
    let saturated: Vec<&str> = view
        .runs
        .iter()
        .filter(|r| r.flags().iter().any(|f| f == "saturated"))
        .map(|r| r.label())
        .collect();
    if !saturated.is_empty() {
        out.push(format!(
            "Saturated: {} — the generator may have limited these numbers; see the warnings.",
            saturated.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::phase_tolerance_ms;

    #[test]
    fn the_phase_tolerance_shrinks_with_the_receivers() {
        // 500 receivers, T = 1 s: about 11 ms at p99 (two standard errors 8.9 + gap 2.0).
        let t = phase_tolerance_ms(0.99, 500, 1000.0);
        assert!((10.5..11.5).contains(&t), "{t}");
        // 15 receivers, T = 200 ms: tens of ms at p50.
        let t = phase_tolerance_ms(0.5, 15, 200.0);
        assert!((63.0..65.5).contains(&t), "{t}");
        assert!(phase_tolerance_ms(0.5, 10_000, 200.0) < 5.0);
    }
}
