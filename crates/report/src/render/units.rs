//! How numbers are printed in reports: latency in milliseconds, bytes in decimal units
//! (1 kB = 1,000 B), stated once at the top of each report ([`UNITS_NOTE`]).

/// The one sentence every human-readable report states about units.
pub const UNITS_NOTE: &str = "Latency in milliseconds (ms; results.json stores µs). Bytes in decimal units: 1 kB = 1,000 B, 1 MB = 1,000,000 B.";

/// `523`, `12.3`, `1.23`, `0.042`: three significant digits or so, never scientific.
pub fn ms(value_ms: f64) -> String {
    let a = value_ms.abs();
    if a >= 1000.0 {
        thousands(value_ms.round() as i64)
    } else if a >= 100.0 {
        format!("{value_ms:.0}")
    } else if a >= 10.0 {
        format!("{value_ms:.1}")
    } else if a >= 1.0 {
        format!("{value_ms:.2}")
    } else {
        format!("{value_ms:.3}")
    }
}

/// Decimal bytes: `871 B`, `1.23 kB`, `45.6 MB`, `1.20 GB`.
pub fn bytes(value: f64) -> String {
    let a = value.abs();
    if a < 1_000.0 {
        format!("{value:.0} B")
    } else if a < 1_000_000.0 {
        format!("{} kB", sig3(value / 1e3))
    } else if a < 1_000_000_000.0 {
        format!("{} MB", sig3(value / 1e6))
    } else {
        format!("{} GB", sig3(value / 1e9))
    }
}

/// A plain number with about three significant digits (`0.512`, `12.3`, `4,567`).
pub fn number(value: f64) -> String {
    if value.abs() >= 999.5 {
        thousands(value.round() as i64)
    } else {
        sig3(value)
    }
}

/// A ratio: `23×`, `1.4×`, `0.52×`.
pub fn times(value: f64) -> String {
    if value >= 10.0 {
        format!("{}×", thousands(value.round() as i64))
    } else if value >= 1.0 {
        format!("{value:.1}×")
    } else {
        format!("{value:.2}×")
    }
}

/// A fraction as a percentage; small non-zero values keep their digits (`0.005%`).
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 || p >= 0.1 {
        format!("{p:.1}%")
    } else if p >= 0.001 {
        format!("{p:.3}%")
    } else {
        "<0.001%".to_string()
    }
}

fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 || a == 0.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_decimal_and_readable() {
        assert_eq!(ms(523.4), "523");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(1.234), "1.23");
        assert_eq!(ms(0.042), "0.042");
        assert_eq!(bytes(871.0), "871 B");
        assert_eq!(bytes(1234.0), "1.23 kB");
        assert_eq!(bytes(45_600_000.0), "45.6 MB");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(times(23.4), "23×");
        assert_eq!(times(1.44), "1.4×");
        assert_eq!(number(0.5123), "0.512");
        assert_eq!(number(12_345.6), "12,346");
        assert_eq!(number(999.99), "1,000");
        assert_eq!(percent(0.371), "37.1%");
        assert_eq!(percent(0.0000454), "0.005%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(ms(2507.4), "2,507");
    }
}
