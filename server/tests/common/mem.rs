//! Resident memory of this test process (which hosts the server), from `/proc/self/status`, and
//! a lock so that tests measuring it do not run beside each other in one test binary.

use tokio::sync::{Mutex, MutexGuard};

static ALONE: Mutex<()> = Mutex::const_new(());

/// Held by every test of a binary that measures memory, so none runs beside a measurement.
pub async fn alone() -> MutexGuard<'static, ()> {
    ALONE.lock().await
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

/// Current resident set size in bytes.
pub fn rss() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// Peak resident memory since [`Peak::start`]: the kernel's high-water mark (`VmHWM`) reset to the
/// current RSS through `/proc/self/clear_refs`, or, where that is not allowed, samples of `VmRSS`
/// taken with [`Peak::sample`].
pub struct Peak {
    baseline: u64,
    hwm_reset: bool,
    sampled: u64,
}

impl Peak {
    pub fn start() -> Peak {
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        let baseline = rss();
        Peak {
            baseline,
            hwm_reset,
            sampled: baseline,
        }
    }

    pub fn baseline(&self) -> u64 {
        self.baseline
    }

    /// Records the current RSS (needed only where the high-water mark cannot be reset).
    pub fn sample(&mut self) {
        self.sampled = self.sampled.max(rss());
    }

    /// The highest RSS seen since [`Peak::start`].
    pub fn peak(&mut self) -> u64 {
        self.sample();
        if self.hwm_reset {
            self.sampled.max(status_kib("VmHWM:") * 1024)
        } else {
            self.sampled
        }
    }

    /// How far the peak rose above the baseline, in bytes.
    pub fn growth(&mut self) -> u64 {
        self.peak().saturating_sub(self.baseline)
    }
}

/// Bytes as MB with one decimal, for messages.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
