//! `report.html`: one self-contained page (inline CSS, inline SVG charts; no scripts, fonts or
//! links to anything outside the file), readable offline.

use std::fmt::Write as _;

use super::charts;
use super::columns::{Group, Table, group_table};
use super::units::UNITS_NOTE;
use super::{Exporter, OutputFile, ReportError, ReportView, context, findings, merge};

pub struct HtmlExporter;

impl Exporter for HtmlExporter {
    fn render(&self, view: &ReportView<'_>) -> Result<Vec<OutputFile>, ReportError> {
        Ok(vec![OutputFile::new("report.html", page(view)?)])
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1100px;padding:1rem 1.5rem;color:#222;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4;white-space:normal;vertical-align:bottom;max-width:9rem}
.scroll{overflow-x:auto}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dt{font-weight:600}dd{margin:0}strong.warn,li.warn{color:#a40000}
figure{margin:1.5rem 0}figure svg{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#555}.note{color:#555;font-size:.9rem}
";

fn page(view: &ReportView<'_>) -> Result<String, ReportError> {
    let mut h =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>pushpoll: push versus polling</title>\n");
    let _ = write!(h, "<style>{STYLE}</style>\n</head>\n<body>\n");
    h.push_str("<h1>pushpoll: push versus polling</h1>\n<dl>\n");
    for (what, value) in context::describe(view.results) {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", escape(what), escape(&value));
    }
    let _ = writeln!(h, "</dl>\n<p class=\"note\">{}</p>", escape(UNITS_NOTE));

    h.push_str("<h2>Findings</h2>\n<ul>\n");
    for f in findings::findings(view) {
        let _ = writeln!(h, "<li>{}</li>", escape(&f));
    }
    h.push_str("</ul>\n");
    for group in Group::ALL {
        h.push_str(&table(&group_table(view, group)));
    }
    if let Some(t) = merge::comparison_table(view) {
        h.push_str(&table(&t));
    }
    h.push_str(&warnings(view));
    h.push_str("<h2>Charts</h2>\n");
    let charts = charts::all(view)?;
    if charts.is_empty() {
        h.push_str("<p>No run delivered any message: nothing to chart.</p>\n");
    }
    for c in charts {
        let _ = write!(
            h,
            "<figure id=\"{}\">\n{}\n<figcaption><strong>{}.</strong> {}</figcaption>\n</figure>\n",
            c.id,
            c.svg.trim(),
            escape(c.title),
            escape(c.caption)
        );
    }
    h.push_str("<p class=\"note\">Per-run percentile distributions are in the <code>.hgrm</code> files beside this page; every number comes from <code>results.json</code>.</p>\n</body>\n</html>\n");
    Ok(h)
}

fn table(t: &Table) -> String {
    let mut h = format!(
        "<h2>{}</h2>\n<div class=\"scroll\"><table>\n<thead><tr>",
        escape(&t.title)
    );
    for header in &t.headers {
        let _ = write!(h, "<th>{}</th>", escape(header));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        h.push_str("<tr>");
        for c in row {
            if c.strong && !c.text.is_empty() {
                let _ = write!(
                    h,
                    "<td><strong class=\"warn\">{}</strong></td>",
                    escape(&c.text)
                );
            } else {
                let _ = write!(h, "<td>{}</td>", escape(&c.text));
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    h
}

fn warnings(view: &ReportView<'_>) -> String {
    let mut h = String::from("<h2>Warnings</h2>\n");
    let items: Vec<String> = view
        .runs
        .iter()
        .flat_map(|r| {
            r.run.warnings.iter().map(move |w| {
                format!(
                    "<li class=\"warn\"><strong>{}: {}</strong></li>",
                    escape(r.label()),
                    escape(&w.to_string())
                )
            })
        })
        .collect();
    if items.is_empty() && view.all_completed() {
        h.push_str("<p>None: every run kept to its plan.</p>\n");
    } else if items.is_empty() {
        h.push_str("<p>None; see the findings for the runs that did not complete.</p>\n");
    } else {
        let _ = writeln!(h, "<ul>\n{}\n</ul>", items.join("\n"));
    }
    h
}

/// HTML text escaping for the five special characters; a dependency for this is not worth it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
