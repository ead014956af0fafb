//! Charts 3 and 4: measurements against the polling interval T (log axis), with the model
//! where it predicts one and each push strategy as a horizontal reference line.

use plotters::prelude::*;

use super::{
    Chart, LEGEND_WIDTH, LegendEntry, MODEL_COLOR, Mark, WIDTH, axis_font, caption_font, color,
    fail, log_range, log_ticks, side_legend, tick,
};
use crate::render::ReportError;
use crate::render::view::{ReportView, RunView};

/// One panel: a measured quantity of each run, plotted against T.
struct Panel<'v> {
    name: &'static str,
    title: &'static str,
    y_desc: &'static str,
    value: &'v dyn Fn(&RunView<'_>) -> Option<f64>,
    /// The model's prediction for interval T (seconds), if there is one.
    model: Option<(&'static str, &'v dyn Fn(f64) -> f64)>,
}

pub fn latency_chart(view: &ReportView<'_>) -> Result<Option<Chart>, ReportError> {
    let p50 = |r: &RunView<'_>| r.has_deliveries().then(|| r.p50_ms());
    let p99 = |r: &RunView<'_>| r.has_deliveries().then(|| r.p99_ms());
    let panels = [
        Panel {
            name: "latency-vs-interval",
            title: "p50",
            y_desc: "p50 latency (ms, log)",
            value: &p50,
            model: Some(("model T/2", &|t| t * 1000.0 / 2.0)),
        },
        Panel {
            name: "latency-vs-interval",
            title: "p99",
            y_desc: "p99 latency (ms, log)",
            value: &p99,
            model: Some(("model 0.99·T", &|t| t * 1000.0 * 0.99)),
        },
    ];
    draw(
        view,
        &panels,
        Some("model T/2, 0.99·T"),
        "latency-vs-interval",
        "Latency against the polling interval",
        "Lines with points: polling at each interval; dashed: the model; flat lines: push strategies, which do not depend on T.",
    )
}

pub fn overhead_chart(view: &ReportView<'_>) -> Result<Option<Chart>, ReportError> {
    let clients = view.results.scenario.clients.get() as f64;
    let bytes = |r: &RunView<'_>| Some(r.bytes_per_delivery());
    let rps = |r: &RunView<'_>| Some(r.requests_per_second());
    let model_rps = move |t: f64| clients / t;
    let panels = [
        Panel {
            name: "overhead-vs-interval",
            title: "bytes per delivered message",
            y_desc: "bytes per delivered message (B, log)",
            value: &bytes,
            model: None,
        },
        Panel {
            name: "overhead-vs-interval",
            title: "requests per second",
            y_desc: "receiver requests/s (log)",
            value: &rps,
            model: Some(("model N/T", &model_rps)),
        },
    ];
    draw(
        view,
        &panels,
        Some("model N/T"),
        "overhead-vs-interval",
        "Cost against the polling interval",
        "Bytes on the wire per delivered message and HTTP requests per second made by the receivers. Push strategies are flat lines; a value of 0 (one long-lived connection, no requests in the window) cannot be drawn on a log axis and is left out.",
    )
}

fn draw(
    view: &ReportView<'_>,
    panels: &[Panel<'_>],
    model_legend: Option<&str>,
    id: &'static str,
    title: &'static str,
    caption: &'static str,
) -> Result<Option<Chart>, ReportError> {
    let intervals: Vec<f64> = view.runs.iter().filter_map(|r| r.interval_s()).collect();
    let Some((t_lo, t_hi)) = log_range(intervals.iter().copied()) else {
        return Ok(None);
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(fail(id))?;
        let root = root.titled(title, caption_font()).map_err(fail(id))?;
        let (plots, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        for (area, panel) in plots.split_evenly((1, panels.len())).iter().zip(panels) {
            draw_panel(area, view, panel, (t_lo, t_hi))?;
        }
        side_legend(&legend, &legend_entries(view, model_legend), id)?;
        root.present().map_err(fail(id))?;
    }
    Ok(Some(Chart {
        id,
        title,
        caption,
        svg,
    }))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    view: &ReportView<'_>,
    panel: &Panel<'_>,
    (t_lo, t_hi): (f64, f64),
) -> Result<(), ReportError> {
    let name = panel.name;
    let model_ys = panel
        .model
        .iter()
        .flat_map(|(_, m)| [m(t_lo), m(t_hi)])
        .collect::<Vec<_>>();
    let values = view
        .runs
        .iter()
        .filter_map(|r| (panel.value)(r))
        .chain(model_ys);
    let Some((lo, hi)) = log_range(values) else {
        return Ok(());
    };
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, axis_font())
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (t_lo..t_hi)
                .log_scale()
                .with_key_points(log_ticks(t_lo, t_hi)),
            (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
        )
        .map_err(fail(name))?;
    chart
        .configure_mesh()
        .x_desc("polling interval T (s, log)")
        .y_desc(panel.y_desc)
        .axis_desc_style(axis_font())
        .label_style(axis_font())
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| tick(*y))
        .bold_line_style(super::GRID)
        .draw()
        .map_err(fail(name))?;
    // Polling: one line per source (one for a plain sweep), coloured like its first run.
    for source in view.sources() {
        let polls = view.polls(source);
        let pts: Vec<(f64, f64)> = polls
            .iter()
            .filter_map(|r| Some((r.interval_s()?, (panel.value)(r)?)))
            .filter(|(_, y)| *y > 0.0)
            .collect();
        let Some(c) = poll_color(view, source) else {
            continue;
        };
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(3)).point_size(5))
            .map_err(fail(name))?;
    }
    if let Some((_, model)) = &panel.model {
        let pts: Vec<(f64, f64)> = (0..=20)
            .map(|k| t_lo * (t_hi / t_lo).powf(f64::from(k) / 20.0))
            .map(|t| (t, model(t)))
            .collect();
        chart
            .draw_series(DashedLineSeries::new(
                pts,
                8,
                6,
                MODEL_COLOR.stroke_width(2),
            ))
            .map_err(fail(name))?;
    }
    // Each push line is drawn thinner than the one before, so equal values stay visible.
    let pushes: Vec<_> = view
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_push())
        .collect();
    for (k, (i, r)) in pushes.iter().enumerate() {
        let Some(y) = (panel.value)(r).filter(|y| *y > 0.0) else {
            continue;
        };
        let width = (pushes.len() - k).clamp(2, 6) as u32;
        chart
            .draw_series(LineSeries::new(
                [(t_lo, y), (t_hi, y)],
                color(*i).stroke_width(width),
            ))
            .map_err(fail(name))?;
    }
    Ok(())
}

/// Polling of one source is drawn in the colour of its first poll run.
fn poll_color(view: &ReportView<'_>, source: Option<&str>) -> Option<RGBColor> {
    let first = *view.polls(source).first()?;
    let index = view.runs.iter().position(|r| std::ptr::eq(r, first))?;
    Some(color(index))
}

fn legend_entries(view: &ReportView<'_>, model: Option<&str>) -> Vec<LegendEntry> {
    let mut entries = Vec::new();
    for source in view.sources() {
        if let Some(c) = poll_color(view, source) {
            entries.push(LegendEntry {
                label: source.map_or("poll".into(), |s| format!("{s}: poll")),
                color: c,
                mark: Mark::LinePoints,
            });
        }
    }
    if let Some(m) = model {
        entries.push(LegendEntry {
            label: m.to_string(),
            color: MODEL_COLOR,
            mark: Mark::Dashed,
        });
    }
    for (i, r) in view.runs.iter().enumerate().filter(|(_, r)| r.is_push()) {
        entries.push(LegendEntry {
            label: r.label().to_string(),
            color: color(i),
            mark: Mark::Line,
        });
    }
    entries
}
