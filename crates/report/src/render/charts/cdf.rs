//! Chart 2: one panel per polling run: the measured latency CDF next to the model's
//! Uniform(0, T) line (a polling client sees a message after a uniformly distributed wait).

use plotters::prelude::*;

use super::{Chart, MODEL_COLOR, WIDTH, axis_font, caption_font, color, fail, legend_box, tick};
use crate::render::ReportError;
use crate::render::view::{ReportView, RunView};

const NAME: &str = "cdf";
const PANEL_HEIGHT: u32 = 330;
/// Points per measured curve.
const STEPS: u64 = 150;

/// `(latency ms, fraction delivered by then)` for one run, up to `x_max_ms`.
fn cdf_points(r: &RunView<'_>, x_max_ms: f64) -> Vec<(f64, f64)> {
    let step_us = ((x_max_ms * 1000.0) as u64 / STEPS).max(1);
    let mut pts = vec![(0.0, 0.0)];
    pts.extend(
        r.corrected
            .iter_linear(step_us)
            .map(|v| (v.value_iterated_to() as f64 / 1000.0, v.quantile()))
            .take_while(|(x, _)| *x <= x_max_ms),
    );
    pts
}

pub fn chart(view: &ReportView<'_>) -> Result<Option<Chart>, ReportError> {
    let polls: Vec<(usize, &RunView<'_>)> = view
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.interval_s().is_some() && r.has_deliveries())
        .collect();
    if polls.is_empty() {
        return Ok(None);
    }
    let cols = polls.len().min(2);
    let rows = polls.len().div_ceil(cols);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 50 + PANEL_HEIGHT * rows as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(fail(NAME))?;
        let root = root
            .titled(
                "Latency CDF per polling interval, with the model Uniform(0, T)",
                caption_font(),
            )
            .map_err(fail(NAME))?;
        for (panel, (i, r)) in root.split_evenly((rows, cols)).iter().zip(&polls) {
            draw_panel(panel, *i, r)?;
        }
        root.present().map_err(fail(NAME))?;
    }
    Ok(Some(Chart {
        id: NAME,
        title: "Latency CDF per polling interval",
        caption: "Solid: measured share of deliveries within a latency; dashed: the model, uniform between 0 and the interval T. A curve right of the dashed line is slower than the model.",
        svg,
    }))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    i: usize,
    r: &RunView<'_>,
) -> Result<(), ReportError> {
    let t_ms = r.interval_s().expect("poll runs only") * 1000.0;
    let x_max = (t_ms * 1.3).max(r.run.latency.corrected.p99_us as f64 / 1000.0 * 1.05);
    let mut chart = ChartBuilder::on(area)
        .caption(r.label(), axis_font())
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..1.02f64)
        .map_err(fail(NAME))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("delivered")
        .axis_desc_style(axis_font())
        .label_style(axis_font())
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .bold_line_style(super::GRID)
        .light_line_style(WHITE)
        .draw()
        .map_err(fail(NAME))?;
    let c = color(i);
    chart
        .draw_series(LineSeries::new(cdf_points(r, x_max), c.stroke_width(3)))
        .map_err(fail(NAME))?
        .label("measured")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
    let model = [(0.0, 0.0), (t_ms, 1.0), (x_max, 1.0)];
    chart
        .draw_series(DashedLineSeries::new(
            model,
            8,
            6,
            MODEL_COLOR.stroke_width(2),
        ))
        .map_err(fail(NAME))?
        .label(format!(
            "model U(0, {})",
            r.run
                .strategy
                .interval
                .map(crate::scenario::format_duration)
                .unwrap_or_default()
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], MODEL_COLOR.stroke_width(2)));
    legend_box(&mut chart, SeriesLabelPosition::LowerRight, NAME)
}
