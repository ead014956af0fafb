//! Chart 1: latency by percentile for every run, log latency against a 1/(1−p) axis, as
//! HdrHistogram's plotter draws it: the tail gets as much room as the median.

use plotters::prelude::*;

use super::{
    Chart, LEGEND_WIDTH, LegendEntry, Mark, WIDTH, axis_font, caption_font, color, fail, log_range,
    log_ticks, side_legend, tick,
};
use crate::render::ReportError;
use crate::render::hgrm::TICKS_PER_HALF_DISTANCE;
use crate::render::view::ReportView;

const NAME: &str = "percentile";

/// (run index for the colour, label, points)
type Series<'a> = (usize, &'a str, Vec<(f64, f64)>);

/// The 95 % confidence intervals drawn on each line, at these percentiles.
const BAND_QUANTILES: [f64; 2] = [0.5, 0.99];
/// Half the width of an interval's caps, as a factor on the log x axis.
const CAP: f64 = 1.06;

/// One interval drawn: `(x, low ms, high ms)`.
type Whisker = (f64, f64, f64);

/// Whiskers of a run's intervals at [`BAND_QUANTILES`].
fn whiskers(r: &crate::render::view::RunView<'_>) -> Vec<Whisker> {
    BAND_QUANTILES
        .iter()
        .filter_map(|&q| {
            let (lo, hi) = r.interval_ms(q)?;
            Some((x_of(q), lo.max(0.001), hi.max(0.001)))
        })
        .collect()
}

/// `x = 1/(1−p)` on a log axis: 1 at 0%, 2 at 50%, 10 at 90%, 1000 at 99.9%.
fn x_of(q: f64) -> f64 {
    1.0 / (1.0 - q)
}

/// The percentile label for an x position (`50%`, `99.9%`).
fn percentile_label(x: f64) -> String {
    let p = (1.0 - 1.0 / x) * 100.0;
    let s = format!("{p:.4}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Points `(x, latency ms)` of one histogram, every percentile tick below 100%.
fn points(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    h.iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| {
            (
                x_of(v.quantile_iterated_to()),
                (v.value_iterated_to().max(1)) as f64 / 1000.0,
            )
        })
        .collect()
}

pub fn chart(view: &ReportView<'_>) -> Result<Option<Chart>, ReportError> {
    let series: Vec<Series<'_>> = view
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.has_deliveries())
        .map(|(i, r)| (i, r.label(), points(&r.corrected)))
        .filter(|(_, _, p)| !p.is_empty())
        .collect();
    let bands: Vec<(usize, Vec<Whisker>)> = view
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.has_deliveries())
        .map(|(i, r)| (i, whiskers(r)))
        .collect();
    let all = series.iter().flat_map(|(_, _, p)| p.iter());
    let Some((lo, hi)) = log_range(all.clone().map(|p| p.1)) else {
        return Ok(None);
    };
    // Up to the deepest tail measured (at least 99.9%), in whole "nines".
    let nines = all
        .map(|p| p.0.log10())
        .fold(3.0f64, f64::max)
        .ceil()
        .min(6.0) as i32;
    let max_x = 10f64.powi(nines);
    let x_ticks: Vec<f64> = [1.0, 2.0]
        .into_iter()
        .chain((1..=nines).map(|k| 10f64.powi(k)))
        .collect();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(fail(NAME))?;
        let root = root
            .titled("Delivery latency by percentile", caption_font())
            .map_err(fail(NAME))?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
        let mut chart = ChartBuilder::on(&plot)
            .margin(16)
            .margin_right(36)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (1f64..max_x).log_scale().with_key_points(x_ticks),
                (lo..hi).log_scale().with_key_points(log_ticks(lo, hi)),
            )
            .map_err(fail(NAME))?;
        chart
            .configure_mesh()
            .x_desc("percentile (axis spaced by 1/(1−p))")
            .y_desc("latency (ms, log scale)")
            .axis_desc_style(axis_font())
            .label_style(axis_font())
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| tick(*y))
            .bold_line_style(super::GRID)
            .draw()
            .map_err(fail(NAME))?;
        let mut entries = Vec::new();
        for (i, label, pts) in series {
            chart
                .draw_series(LineSeries::new(pts, color(i).stroke_width(3)))
                .map_err(fail(NAME))?;
            entries.push(LegendEntry {
                label: label.to_string(),
                color: color(i),
                mark: Mark::Line,
            });
        }
        for (i, whiskers) in &bands {
            let style = color(*i).stroke_width(2);
            // Whiskers outside the plotted range (an interval wider than the data) are left out.
            let inside = |w: &&Whisker| w.1 >= lo && w.2 <= hi;
            for &(x, low, high) in whiskers.iter().filter(inside) {
                let paths = [
                    vec![(x, low), (x, high)],
                    vec![(x / CAP, low), (x * CAP, low)],
                    vec![(x / CAP, high), (x * CAP, high)],
                ];
                chart
                    .draw_series(paths.into_iter().map(|p| PathElement::new(p, style)))
                    .map_err(fail(NAME))?;
            }
        }
        side_legend(&legend, &entries, NAME)?;
        root.present().map_err(fail(NAME))?;
    }
    Ok(Some(Chart {
        id: NAME,
        title: "Latency by percentile",
        caption: "Every strategy's delivery latency from the median to the tail; lower is better. Polling lines sit near T/2 at 50% and near T at 99%. The bars at 50% and 99% are 95% confidence intervals, resampled over probes.",
        svg,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_is_labelled_in_nines() {
        assert_eq!(percentile_label(x_of(0.0)), "0%");
        assert_eq!(percentile_label(x_of(0.5)), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
    }
}
