//! `summary.md`: the comparison a person reads first.

use std::fmt::Write as _;

use super::columns::{Group, Table, group_table};
use super::units::UNITS_NOTE;
use super::{Exporter, OutputFile, ReportError, ReportView, context, findings, merge};

pub struct MarkdownExporter;

impl Exporter for MarkdownExporter {
    fn render(&self, view: &ReportView<'_>) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile::new("summary.md", summary(view))])
    }
}

pub fn summary(view: &ReportView<'_>) -> String {
    let mut md = String::from("# pushpoll: push versus polling\n\n");
    for (what, value) in context::describe(view.results) {
        let _ = writeln!(md, "- **{what}**: {}", escape(&value));
    }
    let _ = writeln!(md, "\n{UNITS_NOTE}\n");
    for group in Group::ALL {
        md.push_str(&table(&group_table(view, group)));
    }
    if let Some(t) = merge::comparison_table(view) {
        md.push_str(&table(&t));
    }
    md.push_str(&nodes_tables(&view.results.runs));
    md.push_str(&warnings(view));
    md.push_str("## Findings\n\n");
    for f in findings::findings(view) {
        let _ = writeln!(md, "- {}", escape(&f));
    }
    md
}

/// A GitHub-flavoured Markdown table under a `##` heading.
pub fn table(t: &Table) -> String {
    let mut md = format!("## {}\n\n", t.title);
    let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    md.push_str(&row(t.headers.iter().map(|h| escape(h)).collect()));
    md.push_str(&row(t
        .headers
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { "---" } else { "---:" }.to_string())
        .collect()));
    for cells in &t.rows {
        md.push_str(&row(cells
            .iter()
            .map(|c| match (c.strong, c.text.is_empty()) {
                (true, false) => format!("**{}**", escape(&c.text)),
                _ => escape(&c.text),
            })
            .collect()));
    }
    md.push('\n');
    md
}

fn warnings(view: &ReportView<'_>) -> String {
    let mut md = String::from("## Warnings\n\n");
    let mut any = false;
    for r in &view.runs {
        for w in &r.run.warnings {
            any = true;
            let _ = writeln!(
                md,
                "- **{}: {}**",
                escape(r.label()),
                escape(&w.to_string())
            );
        }
    }
    if !any && view.all_completed() {
        md.push_str("None: every run kept to its plan.\n");
    } else if !any {
        md.push_str("None; see the findings for the runs that did not complete.\n");
    }
    md.push('\n');
    md
}

/// Keeps `|` from splitting a table cell and `*`/`_` from starting emphasis.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '|' | '*' | '_' | '\\' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The per-node tables of `summary.md` (empty when no run had several nodes).
fn nodes_tables(runs: &[crate::results::RunResult]) -> String {
    let mut md = String::new();
    for run in runs {
        let Some(nodes) = run.nodes.as_ref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let _ = writeln!(md, "## Nodes: {}\n", run.label);
        md.push_str(
            "| node | receivers | senders | delivered | missing | p50 ms | p99 ms | requests | bytes up | bytes down | server CPU % | server CPU-ms / 1,000 deliveries |\n",
        );
        md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
        };
        let row = |md: &mut String, name: &str, n: &crate::nodes::NodeResult| {
            let per_1000 = n
                .server_cpu_seconds
                .filter(|_| n.delivered > 0)
                .map(|s| s * 1e6 / n.delivered as f64);
            let _ = writeln!(
                md,
                "| {name} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                n.connected,
                n.receivers,
                n.senders,
                n.delivered,
                n.missing,
                opt(n.latency_p50_ms, 1),
                opt(n.latency_p99_ms, 1),
                n.requests,
                n.bytes_up,
                n.bytes_down,
                opt(n.server_cpu_percent, 1),
                opt(per_1000, 2),
            );
        };
        for n in nodes {
            row(&mut md, &n.url.replace('|', "\\|"), n);
        }
        let sum = |f: fn(&crate::nodes::NodeResult) -> u64| nodes.iter().map(f).sum::<u64>();
        let cpu = nodes
            .iter()
            .map(|n| n.server_cpu_seconds)
            .sum::<Option<f64>>();
        let total = crate::nodes::NodeResult {
            url: String::new(),
            receivers: sum(|n| n.receivers),
            connected: sum(|n| n.connected),
            senders: sum(|n| n.senders),
            expected: sum(|n| n.expected),
            delivered: sum(|n| n.delivered),
            missing: sum(|n| n.missing),
            latency_p50_ms: Some(run.latency.corrected.p50_us as f64 / 1e3),
            latency_p99_ms: Some(run.latency.corrected.p99_us as f64 / 1e3),
            requests: sum(|n| n.requests),
            bytes_up: sum(|n| n.bytes_up),
            bytes_down: sum(|n| n.bytes_down),
            server_cpu_percent: nodes.iter().map(|n| n.server_cpu_percent).sum(),
            server_cpu_seconds: cpu,
            server_peak_rss_bytes: None,
        };
        row(&mut md, "**total**", &total);
        md.push_str(
            "\nLatency per node: owed deliveries received through it; the total's includes missing pairs censored at the run's end.\n\n",
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::columns::Cell;

    #[test]
    fn tables_escape_pipes_and_bold_strong_cells() {
        let t = Table {
            title: "T".into(),
            headers: vec!["a".into(), "b".into()],
            rows: vec![vec![
                Cell::plain("x|y"),
                Cell {
                    text: "saturated".into(),
                    strong: true,
                },
            ]],
        };
        let md = table(&t);
        assert!(md.contains("| x\\|y | **saturated** |"), "{md}");
        assert!(md.contains("| --- | ---: |"), "{md}");
    }
}
