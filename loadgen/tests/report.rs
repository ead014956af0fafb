//! Rendering every report format from a fixture `results.json`, and side-by-side reports.

mod report_fixture;

use std::path::Path;

use loadgen::report::{self, hgrm, merge};
use loadgen::results::Results;

fn render(results: &Results) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    report::write_all(results, dir.path()).expect("reports render");
    dir
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_file_is_produced_and_results_json_round_trips() {
    let results = report_fixture::results();
    let dir = render(&results);
    for name in ["results.json", "summary.md", "summary.csv", "report.html"] {
        assert!(dir.path().join(name).is_file(), "{name} missing");
    }
    for run in &results.runs {
        let name = format!("{}.hgrm", report::file_stem(&run.label));
        assert!(dir.path().join(&name).is_file(), "{name} missing");
    }
    let back = Results::load(dir.path()).expect("results.json loads");
    assert_eq!(back.runs.len(), results.runs.len());
    assert_eq!(
        back.runs[2].latency.corrected,
        results.runs[2].latency.corrected
    );
    // No temporary files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn hgrm_files_parse_back_into_the_stored_percentiles() {
    let results = report_fixture::results();
    let dir = render(&results);
    for run in &results.runs {
        let text = read(
            dir.path(),
            &format!("{}.hgrm", report::file_stem(&run.label)),
        );
        let parsed = hgrm::parse(&text).expect("parses");
        let stats = &run.latency.corrected;
        assert_eq!(parsed.total_count, stats.count, "{}", run.label);
        let us = |ms: f64| (ms * 1000.0).round() as u64;
        assert_eq!(
            us(parsed.value_at(0.5).expect("p50")),
            stats.p50_us,
            "{}",
            run.label
        );
        assert_eq!(
            us(parsed.value_at(0.9).expect("p90")),
            stats.p90_us,
            "{}",
            run.label
        );
        assert_eq!(us(parsed.max), stats.max_us, "{}", run.label);
        let h = run.latency.histogram_corrected.decode().expect("decodes");
        // Every row's value is a recorded bucket, with exactly TotalCount samples at or below it.
        for row in &parsed.rows {
            assert_eq!(
                h.count_between(0, us(row.value)),
                row.total_count,
                "{}",
                run.label
            );
            assert_eq!(h.highest_equivalent(us(row.value)), us(row.value));
        }
    }
}

#[test]
fn svgs_are_well_formed_and_the_page_is_self_contained() {
    let results = report_fixture::results();
    let dir = render(&results);
    let html = read(dir.path(), "report.html");
    for run in &results.runs {
        assert!(
            html.contains(&run.label),
            "{} missing from report.html",
            run.label
        );
    }
    let mut svgs = 0;
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("closed svg") + start + "</svg>".len();
        roxmltree::Document::parse(&rest[start..end])
            .unwrap_or_else(|e| panic!("SVG {svgs} is not well-formed XML: {e}"));
        svgs += 1;
        rest = &rest[end..];
    }
    assert_eq!(svgs, 5, "five charts expected");
    for chart in [
        "percentile",
        "cdf",
        "latency-vs-interval",
        "overhead-vs-interval",
        "server-resources",
    ] {
        let file = read(dir.path(), &format!("chart-{chart}.svg"));
        roxmltree::Document::parse(&file).unwrap_or_else(|e| panic!("chart-{chart}.svg: {e}"));
    }
    let lower = html.to_lowercase();
    for banned in ["<script", "<link", "@import", "url(", "src=", "href="] {
        assert!(!lower.contains(banned), "report.html contains `{banned}`");
    }
    for axis in [
        "percentile",
        "latency (ms",
        "polling interval T (s",
        "bytes per delivered message",
    ] {
        assert!(html.contains(axis), "axis label `{axis}` missing");
    }
    assert!(html.contains("99.9%"), "percentile ticks are labelled");
}

#[test]
fn markdown_and_csv_have_a_row_per_run_and_matching_columns() {
    let results = report_fixture::results();
    let dir = render(&results);
    let md = read(dir.path(), "summary.md");
    for section in [
        "## Delivery latency",
        "## Overhead",
        "## Loss",
        "## Warnings",
        "## Findings",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    // Each of the three tables has one row per run, and every row as many cells as its header.
    for table in md.split("\n## ").filter(|t| t.contains("| strategy |")) {
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with('|')).collect();
        let width = rows[0].matches(" | ").count();
        assert_eq!(rows.len(), results.runs.len() + 2, "{table}");
        for r in &rows {
            assert_eq!(r.matches(" | ").count(), width, "{r}");
        }
        for run in &results.runs {
            assert!(
                rows.iter()
                    .any(|r| r.starts_with(&format!("| {}", run.label))
                        || r.starts_with(&format!("| **{}", run.label))),
                "{} missing",
                run.label
            );
        }
    }
    assert!(md.contains("**saturated**"), "saturation flag in bold");
    assert!(
        md.contains("**poll@100ms: generator used 190% CPU"),
        "warning in bold"
    );
    assert!(md.contains("Polling at 1s is "), "{md}");
    assert!(md.contains("Model check (T/2): poll@1s p50"), "{md}");
    // Fixture: 300 B up and 350 B down per request plus 150 B per delivered message.
    assert!(
        md.contains(
            "Bytes on the wire per poll round trip (request and answer, headers and messages): poll@100ms 800 B"
        ),
        "{md}"
    );

    let mut csv = csv::Reader::from_path(dir.path().join("summary.csv")).expect("csv");
    let headers = csv.headers().expect("headers").clone();
    assert_eq!(&headers[0], "strategy");
    assert!(headers.iter().any(|h| h == "p50_ms"));
    let records: Vec<_> = csv.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), results.runs.len());
    for (rec, run) in records.iter().zip(&results.runs) {
        assert_eq!(rec.len(), headers.len());
        assert_eq!(&rec[0], run.label);
        let p50: f64 = rec[headers.iter().position(|h| h == "p50_ms").expect("p50")]
            .parse()
            .expect("number");
        assert_eq!((p50 * 1000.0).round() as u64, run.latency.corrected.p50_us);
    }
}

#[test]
fn two_folders_render_side_by_side() {
    let a = report_fixture::results();
    let mut b = report_fixture::results();
    b.scenario.target = Some("http://127.0.0.1:1/".into());
    b.runs.truncate(3);
    let merged = merge::merge(vec![("A".into(), a.clone()), ("B".into(), b)]).expect("merges");
    assert_eq!(merged.runs.len(), a.runs.len() + 3);
    assert_eq!(merged.runs[0].label, "A:poll@100ms");
    let dir = render(&merged);
    let md = read(dir.path(), "summary.md");
    assert!(md.contains("## Side by side: A vs B"), "{md}");
    assert!(md.contains("| poll@1s |"), "{md}");
    assert!(md.contains("B p50 vs A"), "{md}");
    let html = read(dir.path(), "report.html");
    assert!(html.contains("B:poll@1s") && html.contains("Side by side: A vs B"));
    assert!(dir.path().join("A_poll@1s.hgrm").is_file());

    let mut other = report_fixture::results();
    other.scenario.rate = 99.0;
    let err = merge::merge(vec![("A".into(), a), ("C".into(), other)]).unwrap_err();
    assert!(err.to_string().contains("rate 10.0 vs 99.0"), "{err}");
}

#[test]
fn failed_runs_without_samples_still_render() {
    let mut results = report_fixture::results();
    let mut failed = report_fixture::run("poll@250ms".parse().expect("spec"), 99);
    failed.outcome = loadgen::results::Outcome::Failed {
        detail: "server did not start".into(),
    };
    failed.latency = loadgen::results::LatencyResult::default();
    failed.traffic = Default::default();
    results.runs.push(failed);
    let dir = render(&results);
    let md = read(dir.path(), "summary.md");
    assert!(
        md.contains("poll@250ms did not complete: server did not start"),
        "{md}"
    );
    assert!(md.contains("**failed**"));
    // A failed run is neither held against the model nor counted as lossless.
    assert!(
        md.contains("Every completed run (7 of 9) delivered"),
        "{md}"
    );
    assert!(!md.contains("Every run delivered"), "{md}");
    assert!(!md.contains("poll@250ms 0.00 (model"), "{md}");
    assert!(!md.contains("every run kept to its plan"), "{md}");
    let html = read(dir.path(), "report.html");
    assert!(!html.contains("every run kept to its plan"));
}

/// The model column of `summary.csv` for a poll@50ms and a poll@1s run of the fixture
/// (10 messages/s) under the given arrivals, and the rendered summary.md.
fn empty_poll_models(arrivals: loadgen::scenario::Arrivals) -> (Vec<f64>, String) {
    let mut results = report_fixture::results();
    results.scenario.arrivals = arrivals;
    results.runs = vec![
        report_fixture::run("poll@50ms".parse().expect("spec"), 1),
        report_fixture::run("poll@1s".parse().expect("spec"), 2),
    ];
    let dir = render(&results);
    let mut csv = csv::Reader::from_path(dir.path().join("summary.csv")).expect("csv");
    let column = csv
        .headers()
        .expect("headers")
        .iter()
        .position(|h| h == "model_empty_poll_ratio")
        .expect("model column");
    let models = csv
        .records()
        .map(|r| r.expect("record")[column].parse().expect("number"))
        .collect();
    (models, read(dir.path(), "summary.md"))
}

#[test]
fn empty_poll_model_follows_the_evenly_spaced_sends() {
    // 10 messages/s evenly spaced: a 50 ms poll window is empty half the time, a 1 s one never.
    let (models, md) = empty_poll_models(loadgen::scenario::Arrivals::Even);
    assert_eq!(models, [0.5, 0.0]);
    assert!(md.contains("evenly spaced sends, max(0, 1 − λT)"), "{md}");
}

#[test]
fn empty_poll_model_follows_poisson_arrivals() {
    // Poisson at 10/s: P(no message in T) = e^(−10·T): 0.607 at 50 ms, 0.0000454 at 1 s.
    let (models, md) = empty_poll_models(loadgen::scenario::Arrivals::Poisson);
    assert_eq!(models.len(), 2);
    assert!((models[0] - (-0.5f64).exp()).abs() < 1e-3, "{models:?}");
    assert!((models[1] - (-10f64).exp()).abs() < 1e-4, "{models:?}");
    assert!(md.contains("Poisson arrivals, e^(−λT)"), "{md}");
}

#[test]
fn findings_explain_polling_that_is_cheaper_than_push() {
    let mut results = report_fixture::results();
    let poll5 = results
        .runs
        .iter_mut()
        .find(|r| r.label == "poll@5s")
        .expect("poll@5s");
    poll5.traffic.measured.receiver_bytes_down = 1_000;
    poll5.traffic.measured.receiver_bytes_up = 1_000;
    let dir = render(&results);
    let md = read(dir.path(), "summary.md");
    assert!(
        md.contains("poll@5s costs fewer bytes per delivered message than socketio"),
        "{md}"
    );
    assert!(
        md.contains("each answer carries 50.0 messages on average"),
        "{md}"
    );
    assert!(!md.contains("poll@1s costs fewer"), "{md}");
}

#[test]
fn no_warnings_is_not_called_a_clean_sweep_when_a_run_failed() {
    let mut results = report_fixture::results();
    let mut failed = report_fixture::run("poll@1s".parse().expect("spec"), 3);
    failed.outcome = loadgen::results::Outcome::Failed {
        detail: "target unreachable".into(),
    };
    failed.warnings.clear();
    results.runs = vec![failed];
    let dir = render(&results);
    let md = read(dir.path(), "summary.md");
    assert!(md.contains("None; see the findings"), "{md}");
    assert!(!md.contains("kept to its plan"), "{md}");
    assert!(!md.contains("exactly once"), "{md}");
    let html = read(dir.path(), "report.html");
    assert!(html.contains("None; see the findings"));
}

/// The percentile chart draws each run's 95 % intervals at p50 and p99 as whiskers (a bar and
/// two caps each), and the tables show them and mark censored percentiles as lower bounds.
#[test]
fn confidence_intervals_and_lower_bounds_are_shown() {
    let plain = report_fixture::results();
    let mut with = plain.clone();
    let run = &mut with.runs[0];
    let (p50, p99) = (run.latency.corrected.p50_us, run.latency.corrected.p99_us);
    let interval = |quantile: f64, at: u64| loadgen::bootstrap::Interval {
        quantile,
        estimate_us: at,
        low_us: at - at / 20,
        high_us: at + at / 20,
        level: 0.95,
        probes: 200,
        pairs: 100_000,
        resamples: 1_000,
    };
    run.latency.intervals = vec![interval(0.5, p50), interval(0.99, p99)];
    run.latency.corrected.censored = 10;
    run.latency.corrected.lower_bound_from_us = Some(p99);
    let polylines = |r: &Results| {
        read(render(r).path(), "chart-percentile.svg")
            .matches("<polyline")
            .count()
    };
    assert_eq!(
        polylines(&with),
        polylines(&plain) + 6,
        "two whiskers of three strokes"
    );
    let md = read(render(&with).path(), "summary.md");
    let row = md
        .lines()
        .find(|l| l.starts_with("| ") && l.contains(with.runs[0].label.as_str()))
        .unwrap_or_else(|| panic!("no latency row: {md}"));
    assert!(row.contains("≥"), "p99 and above are lower bounds: {row}");
    let ms = |us: u64| loadgen::report::units::ms(us as f64 / 1000.0);
    assert!(
        row.contains(&format!("{}–{}", ms(p50 - p50 / 20), ms(p50 + p50 / 20))),
        "{row}"
    );
}
