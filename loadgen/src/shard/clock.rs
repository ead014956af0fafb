//! The time axis shards share: nanoseconds since the run's start instant (`--start-at`, a wall
//! clock time), measured with each process's monotonic clock from an anchor taken once.
//!
//! **Clock-sync assumption.** A latency measured across processes (sent by one shard, received
//! by another) is only as good as the agreement of their wall clocks at their anchors. On one
//! machine every process reads the same wall clock, so shards agree to within the anchoring
//! error, which [`Anchor`] measures: its monotonic reading of the start instant, compared
//! between shards of one boot, is the offset between them (the merge reports the spread).
//! Across machines the clocks must be synchronised (NTP/chrony: typically well under a
//! millisecond on a LAN; PTP better) and the offset adds to every cross-machine latency; the
//! merge cannot measure it, and says so.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// A shard's mapping of the shared start instant onto its own monotonic clock.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The start instant on this process's monotonic clock: the recorder's epoch.
    pub epoch: Instant,
    pub facts: ClockFacts,
}

/// What a shard records about its anchor (in `shard.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockFacts {
    /// The start instant, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// The start instant read on CLOCK_MONOTONIC (ns since boot), where it can be read:
    /// shards of one boot (same `boot_id`) that agree exactly have equal values.
    pub start_monotonic_ns: Option<i128>,
    /// Width of the wall-clock bracket around the monotonic reading: the anchoring's own error.
    pub anchor_uncertainty_ns: u64,
    /// `/proc/sys/kernel/random/boot_id`: shards with the same one share a monotonic clock.
    pub boot_id: Option<String>,
}

impl Anchor {
    /// Anchors `start` (wall clock): reads the wall clock on both sides of one monotonic
    /// reading and maps `start` through their midpoint.
    pub fn new(start: SystemTime) -> Anchor {
        let before = SystemTime::now();
        let now = Instant::now();
        let mono = monotonic_ns();
        let after = SystemTime::now();
        let width = after.duration_since(before).unwrap_or_default();
        let mid = before + width / 2;
        // Start relative to the midpoint, as signed nanoseconds.
        let ahead_ns: i128 = match start.duration_since(mid) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        let magnitude =
            Duration::from_nanos(u64::try_from(ahead_ns.unsigned_abs()).unwrap_or(u64::MAX));
        let epoch = if ahead_ns >= 0 {
            now + magnitude
        } else {
            now.checked_sub(magnitude).unwrap_or(now)
        };
        Anchor {
            epoch,
            facts: ClockFacts {
                start_unix_ns: unix_ns(start),
                start_monotonic_ns: mono.map(|m| m + ahead_ns),
                anchor_uncertainty_ns: u64::try_from(width.as_nanos()).unwrap_or(u64::MAX),
                boot_id: boot_id(),
            },
        }
    }
}

/// ns since the Unix epoch (0 before it).
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(target_os = "linux")]
fn monotonic_ns() -> Option<i128> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Some(i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec))
}

#[cfg(not(target_os = "linux"))]
fn monotonic_ns() -> Option<i128> {
    None
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

/// The spread of the start instant between shards of one boot, ns: `None` when fewer than two
/// shards share a boot (shards on several machines: see the module doc).
pub fn spread_ns(clocks: &[&ClockFacts]) -> Option<u64> {
    let first = clocks.first()?;
    let same_boot = clocks
        .iter()
        .all(|c| c.boot_id.is_some() && c.boot_id == first.boot_id);
    if clocks.len() < 2 || !same_boot {
        return None;
    }
    let readings: Vec<i128> = clocks.iter().filter_map(|c| c.start_monotonic_ns).collect();
    if readings.len() != clocks.len() {
        return None;
    }
    let (lo, hi) = readings
        .iter()
        .fold((i128::MAX, i128::MIN), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
    u64::try_from(hi - lo).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two anchors of one start instant in one process agree to within their own brackets
    /// (plus the rounding of the midpoint): the offset a merge would report on one machine.
    #[test]
    fn two_anchors_of_one_start_agree() {
        let start = SystemTime::now() + Duration::from_secs(2);
        let (a, b) = (Anchor::new(start), Anchor::new(start));
        let apart = if a.epoch > b.epoch {
            a.epoch - b.epoch
        } else {
            b.epoch - a.epoch
        };
        let bound = a.facts.anchor_uncertainty_ns + b.facts.anchor_uncertainty_ns + 2_000;
        assert!(
            apart.as_nanos() <= u128::from(bound),
            "{apart:?} apart, bound {bound} ns"
        );
        let spread = spread_ns(&[&a.facts, &b.facts]);
        if cfg!(target_os = "linux") {
            assert!(spread.is_some_and(|s| s <= bound), "{spread:?} > {bound}");
        }
    }

    #[test]
    fn shards_of_different_boots_have_no_measured_spread() {
        let a = ClockFacts {
            boot_id: Some("a".into()),
            start_monotonic_ns: Some(5),
            ..ClockFacts::default()
        };
        let b = ClockFacts {
            boot_id: Some("b".into()),
            ..a.clone()
        };
        assert_eq!(spread_ns(&[&a, &b]), None);
        assert_eq!(spread_ns(&[&a, &a.clone()]), Some(0));
    }
}
