//! `.hgrm` files: HdrHistogram's percentile-distribution text, laid out exactly as Java
//! HdrHistogram's `outputPercentileDistribution` (and wrk2) print it, so existing HdrHistogram
//! plotters read it. Values are in **milliseconds with 3 decimals** (the histogram holds µs, so
//! the scaling ratio is 1000 and no precision is lost). A parser reads the text back for tests
//! and for tools that want the rows.

use hdrhistogram::Histogram;

use super::{Exporter, OutputFile, ReportError, ReportView, file_stem};

/// Percentile ticks per half distance to 100%, as wrk2 and HdrHistogram's examples use.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// µs per printed unit (ms).
pub const VALUE_SCALE: f64 = 1000.0;

pub struct HgrmExporter;

impl Exporter for HgrmExporter {
    fn render(&self, view: &ReportView<'_>) -> Result<Vec<OutputFile>, ReportError> {
        Ok(view
            .runs
            .iter()
            .map(|r| {
                OutputFile::new(
                    format!("{}.hgrm", file_stem(r.label())),
                    percentile_distribution(&r.corrected),
                )
            })
            .collect())
    }
}

/// The percentile distribution of a µs histogram, printed in ms.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    // Java: "%12s %14s %10s %14s\n\n"
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / VALUE_SCALE;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            // Java: "%12.3f %2.12f %10d %14.2f\n"
            let _ = writeln!(
                out,
                "{value:>12.3} {q:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{value:>12.3} {q:>2.12} {total:>10}");
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean(), h.stdev(), h.max() as f64)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        mean / VALUE_SCALE,
        stdev / VALUE_SCALE
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        max / VALUE_SCALE,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    out
}

/// HdrHistogram's sub-bucket count for a precision: the smallest power of two covering
/// 2·10^sigfig (2048 for 3 significant digits). The Rust crate keeps it private.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let single_unit_resolution = 2 * 10u64.pow(u32::from(sigfig));
    single_unit_resolution.next_power_of_two()
}

/// One row of a percentile distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Value in the file's unit (ms for pushpoll's files).
    pub value: f64,
    pub percentile: f64,
    pub total_count: u64,
}

/// A parsed `.hgrm` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    pub rows: Vec<Row>,
    pub mean: f64,
    pub stdev: f64,
    pub max: f64,
    pub total_count: u64,
}

impl Distribution {
    /// The value of the first row at or above `percentile` (a fraction, 0..=1).
    pub fn value_at(&self, percentile: f64) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.percentile >= percentile)
            .map(|r| r.value)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HgrmParseError {
    #[error("line {line}: `{text}` is not a percentile row")]
    BadRow { line: usize, text: String },
    #[error("missing footer line `#[{0} …]`")]
    MissingFooter(&'static str),
}

/// Parses the text [`percentile_distribution`] (or HdrHistogram/wrk2) prints.
pub fn parse(text: &str) -> Result<Distribution, HgrmParseError> {
    let mut rows = Vec::new();
    let (mut mean_sd, mut max_count) = (None, None);
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("Value") {
            continue;
        }
        if let Some(footer) = trimmed.strip_prefix("#[") {
            let numbers = footer_numbers(footer);
            if footer.starts_with("Mean") && numbers.len() == 2 {
                mean_sd = Some((numbers[0], numbers[1]));
            } else if footer.starts_with("Max") && numbers.len() == 2 {
                max_count = Some((numbers[0], numbers[1] as u64));
            }
            continue;
        }
        let bad = || HgrmParseError::BadRow {
            line: i + 1,
            text: line.to_string(),
        };
        let mut fields = trimmed.split_whitespace();
        let mut next = || fields.next().ok_or_else(bad);
        let value = next()?.parse::<f64>().map_err(|_| bad())?;
        let percentile = next()?.parse::<f64>().map_err(|_| bad())?;
        let total_count = next()?.parse::<u64>().map_err(|_| bad())?;
        rows.push(Row {
            value,
            percentile,
            total_count,
        });
    }
    let (mean, stdev) = mean_sd.ok_or(HgrmParseError::MissingFooter("Mean"))?;
    let (max, total_count) = max_count.ok_or(HgrmParseError::MissingFooter("Max"))?;
    Ok(Distribution {
        rows,
        mean,
        stdev,
        max,
        total_count,
    })
}

/// The numbers after each `=` in a footer such as `Mean    =  1.000, StdDeviation   = 2.000]`.
fn footer_numbers(footer: &str) -> Vec<f64> {
    footer
        .split('=')
        .skip(1)
        .filter_map(|part| {
            part.split([',', ']'])
                .next()
                .and_then(|n| n.trim().parse().ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::new_latency_histogram;

    fn sample() -> Histogram<u64> {
        let mut h = new_latency_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 100).expect("in range");
        }
        h
    }

    #[test]
    fn header_and_footer_are_hdrhistogram_s() {
        let text = percentile_distribution(&sample());
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        let first = lines.next().expect("a row");
        assert_eq!(
            first,
            "       0.100 0.000000000000          1           1.00"
        );
        assert!(text.contains("#[Max     =     1000.447, Total count    =        10000]"));
        assert!(text.contains("#[Buckets =           20, SubBuckets     =         2048]"));
        let last_row = text.lines().rfind(|l| !l.starts_with('#')).expect("rows");
        assert_eq!(last_row.split_whitespace().count(), 3, "{last_row}");
        assert!(last_row.contains("1.000000000000"));
    }

    #[test]
    fn rows_parse_back_to_the_histogram_s_percentiles() {
        let h = sample();
        let parsed = parse(&percentile_distribution(&h)).expect("parses");
        assert_eq!(parsed.total_count, h.len());
        assert!(parsed.rows.len() > 50);
        for row in &parsed.rows {
            let us = (row.value * VALUE_SCALE).round() as u64;
            // Each row is a bucket's highest value with exactly TotalCount samples at or below it.
            assert_eq!(
                h.count_between(0, us),
                row.total_count,
                "at {}",
                row.percentile
            );
            assert_eq!(h.highest_equivalent(us), us);
        }
        let p50 = parsed.value_at(0.5).expect("p50 row");
        assert_eq!((p50 * VALUE_SCALE).round() as u64, h.value_at_quantile(0.5));
        assert!((parsed.mean - h.mean() / VALUE_SCALE).abs() < 0.001);
        assert!((parsed.max - h.max() as f64 / VALUE_SCALE).abs() < 0.001);
    }

    #[test]
    fn empty_histogram_prints_header_and_zero_footer() {
        let parsed = parse(&percentile_distribution(&new_latency_histogram())).expect("parses");
        assert!(parsed.rows.is_empty());
        assert_eq!(parsed.total_count, 0);
    }

    #[test]
    fn garbage_is_refused_with_the_line() {
        let err = parse("  1.0 0.5 nope\n").expect_err("not a row");
        assert!(matches!(err, HgrmParseError::BadRow { line: 1, .. }));
        assert_eq!(
            parse("").expect_err("no footer"),
            HgrmParseError::MissingFooter("Mean")
        );
    }
}
