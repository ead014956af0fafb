//! Reading the Prometheus text exposition format (`GET /metrics`): the generator reads a target's
//! process CPU and memory from it, and the server's tests read its counters.

/// The value of the sample `series` in a text exposition: a bare metric name for an unlabelled
/// sample (`process_cpu_seconds_total`), or the name with its labels exactly as the exposition
/// writes them (`requests_total{door="sse"}`). Comments and other series are skipped.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            // The name must end here: `foo_total` is not a sample of `foo`.
            let value = rest.strip_prefix(char::is_whitespace)?;
            value.split_whitespace().next()?.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP process_cpu_seconds_total CPU.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.25
process_resident_memory_bytes 4.5e7
pushpoll_requests_total{door=\"sse\"} 7
pushpoll_requests_total{door=\"poll\"} 3 1700000000000
";

    #[test]
    fn reads_unlabelled_and_labelled_samples() {
        assert_eq!(sample(TEXT, "process_cpu_seconds_total"), Some(1.25));
        assert_eq!(sample(TEXT, "process_resident_memory_bytes"), Some(4.5e7));
        assert_eq!(
            sample(TEXT, "pushpoll_requests_total{door=\"sse\"}"),
            Some(7.0)
        );
        // A timestamp after the value is not part of it.
        assert_eq!(
            sample(TEXT, "pushpoll_requests_total{door=\"poll\"}"),
            Some(3.0)
        );
    }

    #[test]
    fn a_prefix_is_not_a_match() {
        assert_eq!(sample(TEXT, "process_cpu_seconds"), None);
        assert_eq!(sample(TEXT, "pushpoll_requests_total"), None);
        assert_eq!(sample("", "x"), None);
        assert_eq!(sample("x notanumber", "x"), None);
    }
}
