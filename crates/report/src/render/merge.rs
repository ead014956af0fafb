//! Side-by-side reports (`loadgen report A/ B/ --out C/`): runs from several result folders,
//! relabelled `A:poll@1s`, and a comparison table derived from those labels at render time.

use std::collections::BTreeSet;

use super::ReportError;
use super::columns::{Cell, Table};
use super::units::{bytes, ms, times};
use super::view::{ReportView, RunView};
use crate::results::Results;

/// Merges results measured under the same load into one, each run's label prefixed with its
/// source name (`A:poll@1s`). The scenario may differ only in `target` and `seed`, and in how
/// the target was reached (`access`: TLS or not, credentials) and guarded (`safety`).
pub fn merge(inputs: Vec<(String, Results)>) -> Result<Results, ReportError> {
    let mut iter = inputs.into_iter();
    let Some((first_name, first)) = iter.next() else {
        return Err(ReportError::Merge("no results to merge".into()));
    };
    let mut merged = Results {
        runs: Vec::new(),
        ..first.clone()
    };
    merged.scenario.target = None;
    for (name, results) in std::iter::once((first_name.clone(), first.clone())).chain(iter) {
        let differences = scenario_differences(&first, &results);
        if !differences.is_empty() {
            return Err(ReportError::Merge(format!(
                "`{name}` measured a different load than `{first_name}` ({}): a side-by-side report needs the same scenario",
                differences.join(", ")
            )));
        }
        merged.started_unix = merged.started_unix.min(results.started_unix);
        for mut run in results.runs {
            run.label = format!("{name}:{}", run.label);
            merged.runs.push(run);
        }
    }
    Ok(merged)
}

/// Scenario fields (other than target and seed) whose values differ, as `clients 500 vs 1000`.
fn scenario_differences(a: &Results, b: &Results) -> Vec<String> {
    let as_map = |r: &Results| match serde_json::to_value(&r.scenario) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (a, b) = (as_map(a), as_map(b));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "target" | "seed" | "access" | "safety"))
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| v.map_or("none".into(), |v| v.to_string());
            format!("{k} {} vs {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}

/// Source names from folder names, made unique (`A`, `B`, or `results`, `results-2`).
pub fn source_names(dirs: &[std::path::PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let base = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("run{}", i + 1))
            .replace(':', "_");
        let mut name = base.clone();
        let mut k = 2;
        while names.contains(&name) {
            name = format!("{base}-{k}");
            k += 1;
        }
        names.push(name);
    }
    names
}

/// For side-by-side views: one row per strategy, p50 / p99 / bytes per message of each source,
/// and each source's p50 relative to the first source's.
pub fn comparison_table(view: &ReportView<'_>) -> Option<Table> {
    if !view.is_side_by_side() {
        return None;
    }
    let sources: Vec<&str> = view.sources().into_iter().flatten().collect();
    let mut names: Vec<&str> = Vec::new();
    for r in &view.runs {
        if !names.contains(&r.name) {
            names.push(r.name);
        }
    }
    let mut headers = vec!["strategy".to_string()];
    for s in &sources {
        headers.extend([
            format!("{s} p50"),
            format!("{s} p99"),
            format!("{s} bytes/msg"),
        ]);
    }
    for s in sources.iter().skip(1) {
        headers.push(format!("{s} p50 vs {}", sources[0]));
    }
    let find = |source: &str, name: &str| -> Option<&RunView<'_>> {
        view.runs
            .iter()
            .find(|r| r.source == Some(source) && r.name == name && r.has_deliveries())
    };
    let dash = || Cell::plain("–");
    let rows = names
        .iter()
        .map(|name| {
            let mut row = vec![Cell::plain(*name)];
            for s in &sources {
                match find(s, name) {
                    Some(r) => row.extend([
                        Cell::plain(ms(r.p50_ms())),
                        Cell::plain(ms(r.p99_ms())),
                        Cell::plain(bytes(r.bytes_per_delivery())),
                    ]),
                    None => row.extend([dash(), dash(), dash()]),
                }
            }
            for s in sources.iter().skip(1) {
                let ratio = match (find(s, name), find(sources[0], name)) {
                    (Some(b), Some(a)) if a.p50_ms() > 0.0 => times(b.p50_ms() / a.p50_ms()),
                    _ => "–".into(),
                };
                row.push(Cell::plain(ratio));
            }
            row
        })
        .collect();
    Some(Table {
        title: format!("Side by side: {}", sources.join(" vs ")),
        headers,
        rows,
    })
}
