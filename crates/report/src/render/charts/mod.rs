//! The report's charts, drawn with plotters' SVG backend into strings that `report.html`
//! inlines. Text is written as SVG `<text>` with the generic `sans-serif` family, so the page
//! needs no font files; plotters (without its `ttf` feature) only estimates text widths for
//! layout, which is why labels get generous margins here.

pub mod cdf;
pub mod interval;
pub mod percentile;
pub mod resources;

use plotters::prelude::*;

use super::ReportError;
use super::view::ReportView;

/// One rendered chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Stable id (`percentile`, `cdf`, …), used for anchors and file names.
    pub id: &'static str,
    pub title: &'static str,
    /// What to read from it, one sentence.
    pub caption: &'static str,
    pub svg: String,
}

/// Every chart that has data to show, in reading order.
pub fn all(view: &ReportView<'_>) -> Result<Vec<Chart>, ReportError> {
    let charts = [
        percentile::chart(view)?,
        cdf::chart(view)?,
        interval::latency_chart(view)?,
        interval::overhead_chart(view)?,
        resources::chart(view)?,
    ];
    Ok(charts.into_iter().flatten().collect())
}

pub const WIDTH: u32 = 960;

/// Tableau 10: distinguishable, print-friendly series colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of the `i`-th run; the same run has the same colour in every chart.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub const MODEL_COLOR: RGBColor = RGBColor(60, 60, 60);
pub const GRID: RGBColor = RGBColor(225, 225, 225);

pub fn caption_font() -> TextStyle<'static> {
    ("sans-serif", 24).into_font().style(FontStyle::Bold).into()
}
pub fn label_font() -> TextStyle<'static> {
    ("sans-serif", 17).into()
}
pub fn axis_font() -> TextStyle<'static> {
    ("sans-serif", 19).into()
}

/// Maps any plotters error to a [`ReportError`] naming the chart.
pub fn fail<E: std::fmt::Display>(chart: &'static str) -> impl Fn(E) -> ReportError {
    move |e| ReportError::Chart {
        chart,
        detail: e.to_string(),
    }
}

/// 1-2-5 ticks covering `[lo, hi]` (both > 0), for log axes.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi && ticks.len() < 64 {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A log-axis range padded a little around `values` (positive ones only).
pub fn log_range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for v in values.into_iter().filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (hi > 0.0).then(|| (lo / 1.6, hi * 1.6))
}

/// Short tick text: `0.5`, `20`, `1,000`.
pub fn tick(v: f64) -> String {
    if v >= 1000.0 {
        super::units::thousands(v.round() as i64)
    } else if v >= 1.0 {
        format!("{}", (v * 100.0).round() / 100.0)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draws the series legend in the house style.
pub fn legend_box<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    chart_name: &'static str,
) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(label_font())
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(fail(chart_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_follow_1_2_5() {
        assert_eq!(log_ticks(0.8, 60.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        assert_eq!(log_range([0.0, 10.0, 100.0]), Some((10.0 / 1.6, 160.0)));
        assert_eq!(log_range([0.0]), None);
        assert_eq!(tick(0.05), "0.05");
        assert_eq!(tick(2500.0), "2,500");
    }
}

/// How a legend entry's series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Line,
    LinePoints,
    Dashed,
}

/// One entry of a legend drawn beside the plots.
#[derive(Debug, Clone)]
pub struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub mark: Mark,
}

/// Width kept at the right of a figure for [`side_legend`].
pub const LEGEND_WIDTH: u32 = 200;

/// Draws a legend in its own area (beside the plots, so it never hides data).
pub fn side_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[LegendEntry],
    chart: &'static str,
) -> Result<(), ReportError> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    for (k, e) in entries.iter().enumerate() {
        let (x, y) = (8, 64 + 28 * k as i32);
        let style = e.color.stroke_width(3);
        match e.mark {
            Mark::Line => area.draw(&PathElement::new(vec![(x, y), (x + 30, y)], style)),
            Mark::LinePoints => area
                .draw(&PathElement::new(vec![(x, y), (x + 30, y)], style))
                .and_then(|_| area.draw(&Circle::new((x + 15, y), 5, e.color.stroke_width(3)))),
            Mark::Dashed => (0..3).try_for_each(|s| {
                area.draw(&PathElement::new(
                    vec![(x + s * 11, y), (x + s * 11 + 7, y)],
                    e.color.stroke_width(2),
                ))
            }),
        }
        .map_err(fail(chart))?;
        area.draw(&Text::new(
            e.label.clone(),
            (x + 38, y),
            label_font().pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(fail(chart))?;
    }
    Ok(())
}
