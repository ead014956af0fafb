//! Chart 5: what each strategy cost the server: CPU (% of one core) and peak memory, as
//! horizontal bars so long strategy names stay readable.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Chart, WIDTH, axis_font, caption_font, color, fail, label_font, tick};
use crate::render::ReportError;
use crate::render::units;
use crate::render::view::{ReportView, RunView};

const NAME: &str = "server-resources";

type Metric<'a> = (
    &'static str,
    &'a dyn Fn(&RunView<'_>) -> Option<f64>,
    fn(f64) -> String,
);

pub fn chart(view: &ReportView<'_>) -> Result<Option<Chart>, ReportError> {
    if view.runs.iter().all(|r| r.run.resources.server.is_none()) {
        return Ok(None);
    }
    let cpu = |r: &RunView<'_>| r.server_cpu_percent();
    let mem = |r: &RunView<'_>| r.server_memory_bytes().map(|b| b / 1e6);
    let metrics: [Metric<'_>; 2] = [
        ("server CPU (% of one core)", &cpu, |v| format!("{v:.1}%")),
        ("server peak memory (MB)", &mem, |v| units::bytes(v * 1e6)),
    ];
    let height = 120 + 34 * view.runs.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height.max(300))).into_drawing_area();
        root.fill(&WHITE).map_err(fail(NAME))?;
        let root = root
            .titled("Server CPU and memory per strategy", caption_font())
            .map_err(fail(NAME))?;
        for (area, metric) in root.split_evenly((1, 2)).iter().zip(&metrics) {
            draw_bars(area, view, metric)?;
        }
        root.present().map_err(fail(NAME))?;
    }
    Ok(Some(Chart {
        id: NAME,
        title: "Server CPU and memory",
        caption: "CPU averaged over the measured window (100% = one core busy) and the server process's peak resident memory, one fresh server per run.",
        svg,
    }))
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    view: &ReportView<'_>,
    (desc, value, show): &Metric<'_>,
) -> Result<(), ReportError> {
    let n = view.runs.len();
    let values: Vec<Option<f64>> = view.runs.iter().map(value).collect();
    let max = values.iter().flatten().fold(0f64, |a, b| a.max(*b));
    let x_max = if max > 0.0 { max * 1.35 } else { 1.0 };
    // Row i of the table is drawn at y = n−1−i, so the first run is on top.
    let labels: Vec<String> = view.runs.iter().map(|r| r.label().to_string()).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(4) as u32 * 9 + 16;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(label_width.min(240))
        .build_cartesian_2d(0f64..x_max, (0..n as i32 - 1).into_segmented())
        .map_err(fail(NAME))?;
    chart
        .configure_mesh()
        .x_desc(*desc)
        .axis_desc_style(axis_font())
        .label_style(axis_font())
        .x_labels(5)
        .x_label_formatter(&|x| tick(*x))
        .y_labels(n)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(row) => usize::try_from(n as i32 - 1 - row)
                .ok()
                .and_then(|r| labels.get(r).cloned())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .bold_line_style(super::GRID)
        .light_line_style(WHITE)
        .disable_y_mesh()
        .draw()
        .map_err(fail(NAME))?;
    for (i, v) in values.iter().enumerate() {
        let y = (n - 1 - i) as i32;
        let Some(v) = v else {
            chart
                .draw_series(std::iter::once(Text::new(
                    "not measured",
                    (0.0, SegmentValue::CenterOf(y)),
                    label_font().pos(Pos::new(HPos::Left, VPos::Center)),
                )))
                .map_err(fail(NAME))?;
            continue;
        };
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(y)),
                (*v, SegmentValue::Exact(y + 1)),
            ],
            color(i).filled(),
        );
        bar.set_margin(5, 5, 0, 0);
        chart
            .draw_series(std::iter::once(bar))
            .map_err(fail(NAME))?;
        chart
            .draw_series(std::iter::once(Text::new(
                show(*v),
                (*v + x_max * 0.012, SegmentValue::CenterOf(y)),
                label_font().pos(Pos::new(HPos::Left, VPos::Center)),
            )))
            .map_err(fail(NAME))?;
    }
    Ok(())
}
