//! The one column list behind every table: Markdown renders it as three tables (by [`Group`]),
//! CSV as one row per run, HTML as the same three tables. Add a column here and every format
//! gets it.

use super::units;
use super::view::{ReportView, RunView};

/// Which table a column belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Latency,
    Overhead,
    Loss,
    Generator,
}

impl Group {
    pub const ALL: [Group; 4] = [
        Group::Latency,
        Group::Overhead,
        Group::Loss,
        Group::Generator,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Group::Latency => "Delivery latency (coordinated-omission corrected)",
            Group::Overhead => "Overhead",
            Group::Loss => "Loss",
            Group::Generator => "The generator's own error (it bounds every latency above)",
        }
    }
}

/// How a value is shown to people (CSV always writes the plain number in the header's unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    /// Saturation and outcome flags: shown in bold where the format allows.
    Flags,
    /// Milliseconds.
    Ms,
    Count,
    /// Decimal bytes.
    Bytes,
    /// A fraction shown as a percentage.
    Fraction,
    /// A ratio shown as `23×`.
    Times,
    /// A plain number (`12.3`, `4,567`).
    Number,
}

/// A cell value; `None` renders as `–` (Markdown/HTML) or empty (CSV).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Num(f64),
    None,
}

pub struct Column {
    pub group: Group,
    /// Header shown to people (units stated once, at the top of the report).
    pub title: &'static str,
    /// CSV header: snake_case with the unit in the name.
    pub key: &'static str,
    pub format: Format,
    pub value: fn(&ReportView<'_>, &RunView<'_>) -> Value,
}

impl Column {
    /// The cell as people read it (Markdown, HTML).
    pub fn display(&self, view: &ReportView<'_>, run: &RunView<'_>) -> String {
        match (self.value)(view, run) {
            Value::Text(t) => t,
            Value::None => "–".to_string(),
            Value::Num(n) => match self.format {
                Format::Text | Format::Flags | Format::Number => units::number(n),
                Format::Ms => units::ms(n),
                Format::Count => units::thousands(n.round() as i64),
                Format::Bytes => units::bytes(n),
                Format::Fraction => units::percent(n),
                Format::Times => units::times(n),
            },
        }
    }

    /// The cell for spreadsheets: plain numbers, full precision that matters.
    pub fn raw(&self, view: &ReportView<'_>, run: &RunView<'_>) -> String {
        match (self.value)(view, run) {
            Value::Text(t) => t,
            Value::None => String::new(),
            Value::Num(n) => match self.format {
                Format::Count => format!("{}", n.round() as i64),
                Format::Ms => format!("{n:.3}"),
                Format::Bytes => format!("{n:.1}"),
                _ => format!("{n:.4}"),
            },
        }
    }
}

fn num(x: f64) -> Value {
    Value::Num(x)
}
fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::None, Value::Num)
}
fn us(x: u64) -> Value {
    Value::Num(x as f64 / 1000.0)
}
/// Latency numbers only mean something when something was delivered; a percentile that falls
/// among censored (never delivered) pairs is a lower bound and says so with `≥`.
fn lat(r: &RunView<'_>, x: u64) -> Value {
    if !r.has_deliveries() {
        Value::None
    } else if r.run.latency.corrected.is_lower_bound(x) {
        Value::Text(format!("≥{}", units::ms(x as f64 / 1000.0)))
    } else {
        us(x)
    }
}

/// A cost per delivered message: none at all when nothing was delivered in the window (an
/// overloaded run), never a misleading 0.
fn per_delivery(r: &RunView<'_>, x: f64) -> Value {
    if r.run.traffic.measured.deliveries > 0 {
        num(x)
    } else {
        Value::None
    }
}

/// `low–high` ms of a 95 % interval.
fn interval(r: &RunView<'_>, quantile: f64) -> Value {
    match r.interval_ms(quantile) {
        Some((lo, hi)) if r.has_deliveries() => {
            Value::Text(format!("{}–{}", units::ms(lo), units::ms(hi)))
        }
        _ => Value::None,
    }
}

/// A generator lag statistic, when it was measured.
fn lag(stats: &crate::results::LatencyStats, x: u64) -> Value {
    if stats.count > 0 { us(x) } else { Value::None }
}

/// The first column of every table and CSV row.
pub const STRATEGY: Column = Column {
    group: Group::Latency,
    title: "strategy",
    key: "strategy",
    format: Format::Text,
    value: |_, r| Value::Text(r.label().to_string()),
};

/// Every column after the strategy, in table order.
pub const COLUMNS: &[Column] = &[
    Column {
        group: Group::Latency,
        title: "flags",
        key: "flags",
        format: Format::Flags,
        value: |_, r| Value::Text(r.flags().join(", ")),
    },
    Column {
        group: Group::Latency,
        title: "count",
        key: "latency_count",
        format: Format::Count,
        value: |_, r| num(r.run.latency.corrected.count as f64),
    },
    Column {
        group: Group::Latency,
        title: "p50",
        key: "p50_ms",
        format: Format::Ms,
        value: |_, r| lat(r, r.run.latency.corrected.p50_us),
    },
    Column {
        group: Group::Latency,
        title: "p90",
        key: "p90_ms",
        format: Format::Ms,
        value: |_, r| lat(r, r.run.latency.corrected.p90_us),
    },
    Column {
        group: Group::Latency,
        title: "p99",
        key: "p99_ms",
        format: Format::Ms,
        value: |_, r| lat(r, r.run.latency.corrected.p99_us),
    },
    Column {
        group: Group::Latency,
        title: "p99.9",
        key: "p999_ms",
        format: Format::Ms,
        value: |_, r| lat(r, r.run.latency.corrected.p999_us),
    },
    Column {
        group: Group::Latency,
        title: "max",
        key: "max_ms",
        format: Format::Ms,
        value: |_, r| lat(r, r.run.latency.corrected.max_us),
    },
    Column {
        group: Group::Latency,
        title: "p50 95% CI",
        key: "p50_ci_ms",
        format: Format::Text,
        value: |_, r| interval(r, 0.5),
    },
    Column {
        group: Group::Latency,
        title: "p99 95% CI",
        key: "p99_ci_ms",
        format: Format::Text,
        value: |_, r| interval(r, 0.99),
    },
    Column {
        group: Group::Latency,
        title: "probes",
        key: "probes",
        format: Format::Count,
        value: |_, r| num(r.run.latency.probes as f64),
    },
    Column {
        group: Group::Latency,
        title: "server share p50",
        key: "server_share_p50_ms",
        format: Format::Ms,
        value: |_, r| opt(r.server_share_ms()),
    },
    Column {
        group: Group::Latency,
        title: "model p50",
        key: "model_p50_ms",
        format: Format::Ms,
        value: |_, r| opt(r.model_p50_ms()),
    },
    Column {
        group: Group::Latency,
        title: "model p99",
        key: "model_p99_ms",
        format: Format::Ms,
        value: |_, r| opt(r.model_p99_ms()),
    },
    Column {
        group: Group::Latency,
        title: "p50 vs push",
        key: "p50_ratio_to_push",
        format: Format::Times,
        value: |v, r| opt(v.ratio_to_push(r, |x| x.p50_ms()).filter(|_| !r.is_push())),
    },
    Column {
        group: Group::Overhead,
        title: "requests/s",
        key: "requests_per_second",
        format: Format::Number,
        value: |_, r| num(r.requests_per_second()),
    },
    Column {
        group: Group::Overhead,
        title: "empty polls",
        key: "empty_poll_ratio",
        format: Format::Fraction,
        value: |_, r| match r.run.strategy.kind {
            crate::scenario::StrategyKind::Poll | crate::scenario::StrategyKind::Longpoll => {
                num(r.empty_poll_ratio())
            }
            _ => Value::None,
        },
    },
    Column {
        group: Group::Overhead,
        title: "model empty",
        key: "model_empty_poll_ratio",
        format: Format::Fraction,
        value: |_, r| opt(r.model_empty_ratio()),
    },
    Column {
        group: Group::Overhead,
        title: "bytes/delivered msg",
        key: "bytes_per_delivered_msg",
        format: Format::Bytes,
        value: |_, r| per_delivery(r, r.bytes_per_delivery()),
    },
    Column {
        group: Group::Overhead,
        title: "bytes/msg all-in",
        key: "bytes_per_delivered_msg_all_in",
        format: Format::Bytes,
        value: |_, r| {
            if r.run.traffic.deliveries > 0 {
                num(r.run.traffic.all_in_bytes_per_delivery())
            } else {
                Value::None
            }
        },
    },
    Column {
        group: Group::Overhead,
        title: "bytes vs push",
        key: "bytes_ratio_to_push",
        format: Format::Times,
        value: |v, r| {
            opt(v
                .ratio_to_push(r, |x| x.bytes_per_delivery())
                .filter(|_| !r.is_push()))
        },
    },
    Column {
        group: Group::Overhead,
        title: "requests/delivered msg",
        key: "requests_per_delivered_msg",
        format: Format::Number,
        value: |_, r| per_delivery(r, r.requests_per_delivery()),
    },
    Column {
        group: Group::Overhead,
        title: "server CPU (% of one core)",
        key: "server_cpu_percent",
        format: Format::Number,
        value: |_, r| opt(r.server_cpu_percent()),
    },
    Column {
        group: Group::Overhead,
        title: "server CPU-ms per 1,000 deliveries",
        key: "server_cpu_ms_per_1000_deliveries",
        format: Format::Number,
        value: |_, r| opt(r.server_cpu_ms_per_1000()),
    },
    Column {
        group: Group::Overhead,
        title: "server memory (peak)",
        key: "server_peak_rss_bytes",
        format: Format::Bytes,
        value: |_, r| opt(r.server_memory_bytes()),
    },
    Column {
        group: Group::Overhead,
        title: "server memory per connection",
        key: "server_memory_per_connection_bytes",
        format: Format::Bytes,
        value: |_, r| opt(r.server_memory_per_connection()),
    },
    Column {
        group: Group::Loss,
        title: "expected",
        key: "expected",
        format: Format::Count,
        value: |_, r| num(r.run.delivery.expected as f64),
    },
    Column {
        group: Group::Loss,
        title: "delivered",
        key: "delivered",
        format: Format::Count,
        value: |_, r| num(r.run.delivery.delivered as f64),
    },
    Column {
        group: Group::Loss,
        title: "missing",
        key: "missing",
        format: Format::Count,
        value: |_, r| num(r.run.delivery.missing as f64),
    },
    Column {
        group: Group::Loss,
        title: "duplicates",
        key: "duplicates",
        format: Format::Count,
        value: |_, r| num(r.run.delivery.duplicates as f64),
    },
    Column {
        group: Group::Loss,
        title: "out of order",
        key: "out_of_order",
        format: Format::Count,
        value: |_, r| num(r.run.delivery.out_of_order as f64),
    },
    Column {
        group: Group::Loss,
        title: "failed sends",
        key: "failed_sends",
        format: Format::Count,
        value: |_, r| num(r.run.schedule.failed_sends as f64),
    },
    Column {
        group: Group::Loss,
        title: "by catch-up",
        key: "delivered_by_catchup",
        format: Format::Count,
        value: |_, r| num(r.run.delivery.delivered_by_catchup as f64),
    },
    Column {
        group: Group::Loss,
        title: "stale answers",
        key: "stale_answers",
        format: Format::Count,
        value: |_, r| {
            r.run
                .polls
                .as_ref()
                .map_or(Value::None, |p| num(p.stale_answers as f64))
        },
    },
    Column {
        group: Group::Loss,
        title: "errors",
        key: "errors",
        format: Format::Count,
        value: |_, r| num(r.errors() as f64),
    },
    Column {
        group: Group::Generator,
        title: "send lag p50",
        key: "send_lag_p50_ms",
        format: Format::Ms,
        value: |_, r| {
            let s = &r.run.generator_error.send_lag;
            lag(s, s.p50_us)
        },
    },
    Column {
        group: Group::Generator,
        title: "send lag p99",
        key: "send_lag_p99_ms",
        format: Format::Ms,
        value: |_, r| {
            let s = &r.run.generator_error.send_lag;
            lag(s, s.p99_us)
        },
    },
    Column {
        group: Group::Generator,
        title: "loop lag p50",
        key: "loop_lag_p50_ms",
        format: Format::Ms,
        value: |_, r| {
            let s = &r.run.generator_error.loop_lag;
            lag(s, s.p50_us)
        },
    },
    Column {
        group: Group::Generator,
        title: "loop lag p99",
        key: "loop_lag_p99_ms",
        format: Format::Ms,
        value: |_, r| {
            let s = &r.run.generator_error.loop_lag;
            lag(s, s.p99_us)
        },
    },
    Column {
        group: Group::Generator,
        title: "busiest thread (% of one core)",
        key: "busiest_thread_cpu_percent",
        format: Format::Number,
        value: |_, r| {
            r.run
                .generator_error
                .threads
                .first()
                .map_or(Value::None, |t| num(t.cpu_percent))
        },
    },
    Column {
        group: Group::Generator,
        title: "generator CPU (% of one core)",
        key: "generator_cpu_percent",
        format: Format::Number,
        value: |_, r| num(r.run.resources.generator.cpu_percent),
    },
    Column {
        group: Group::Generator,
        title: "late sends",
        key: "late_sends",
        format: Format::Count,
        value: |_, r| num(r.run.schedule.late_sends as f64),
    },
    Column {
        group: Group::Generator,
        title: "late polls",
        key: "late_polls",
        format: Format::Count,
        value: |_, r| num(r.run.schedule.late_polls as f64),
    },
];

/// The columns of one table, in order.
pub fn of_group(group: Group) -> impl Iterator<Item = &'static Column> {
    COLUMNS.iter().filter(move |c| c.group == group)
}

/// A rendered table (strings already formatted), for Markdown and HTML alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// One formatted cell; `strong` cells are bold (flags, warnings).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub strong: bool,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            strong: false,
        }
    }
}

/// One table per [`Group`]: the strategy column, then the group's columns.
pub fn group_table(view: &ReportView<'_>, group: Group) -> Table {
    let columns: Vec<&Column> = std::iter::once(&STRATEGY).chain(of_group(group)).collect();
    Table {
        title: group.title().to_string(),
        headers: columns.iter().map(|c| c.title.to_string()).collect(),
        rows: view
            .runs
            .iter()
            .map(|run| {
                columns
                    .iter()
                    .map(|c| {
                        let text = c.display(view, run);
                        let strong = (c.format == Format::Flags && !text.is_empty())
                            || (c.key == STRATEGY.key && !run.flags().is_empty());
                        Cell { text, strong }
                    })
                    .collect()
            })
            .collect(),
    }
}
