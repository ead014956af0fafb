//! Fixed schedules: tick `i` is due at `origin + phase + i·period`, whatever happened before.
//!
//! Senders and pollers share this arithmetic so that a slow server shows up as late or skipped
//! ticks (and, for senders, as latency measured from the intended instant) instead of silently
//! stretching the schedule (coordinated omission).

use std::time::Duration;

use tokio::time::Instant;

/// A tick that starts later than this after its due instant counts as late. tokio's timer
/// rounds deadlines up to its 1 ms tick, so up to ~1 ms is the timer's own granularity, not a
/// stall; 2 ms leaves room for that plus a wake-up.
pub const LATE_AFTER: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    origin: Instant,
    phase: Duration,
    period: Duration,
}

/// The tick to run next, and how many due ticks were dropped to get there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextTick {
    pub index: u64,
    pub skipped: u64,
}

impl Schedule {
    /// `period` must be non-zero (a zero period would make every tick due at once).
    pub fn new(origin: Instant, phase: Duration, period: Duration) -> Self {
        assert!(!period.is_zero(), "schedule period must be non-zero");
        Schedule {
            origin,
            phase,
            period,
        }
    }

    /// When tick `i` is due.
    pub fn due(&self, i: u64) -> Instant {
        self.origin + self.phase + self.period.mul_f64(i as f64)
    }

    /// After finishing work at `now`, the tick to run next, given that `next` is the first tick
    /// not yet run. A tick already overdue is run at once (late); older overdue ones are skipped,
    /// so a stall never turns into a burst of catch-up requests.
    pub fn after(&self, next: u64, now: Instant) -> NextTick {
        if now <= self.due(next) {
            return NextTick {
                index: next,
                skipped: 0,
            };
        }
        let elapsed = now.saturating_duration_since(self.origin + self.phase);
        let latest_due = (elapsed.as_nanos() / self.period.as_nanos()) as u64;
        let index = latest_due.max(next);
        NextTick {
            index,
            skipped: index - next,
        }
    }

    /// The first tick due at or after `now`.
    pub fn first_at_or_after(&self, now: Instant) -> u64 {
        let first = self.origin + self.phase;
        if now <= first {
            return 0;
        }
        ((now - first).as_nanos().div_ceil(self.period.as_nanos())) as u64
    }
}

/// A seed of its own for client or sender `index`, from the run's `--seed`: the index spread by
/// the 64-bit golden ratio (as splitmix64 does), so neighbours get unrelated random streams.
pub fn seed_for(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched() -> (Instant, Schedule) {
        let o = Instant::now();
        (
            o,
            Schedule::new(o, Duration::from_millis(10), Duration::from_millis(100)),
        )
    }

    #[test]
    fn ticks_are_arithmetic() {
        let (o, s) = sched();
        assert_eq!(s.due(0), o + Duration::from_millis(10));
        assert_eq!(s.due(3), o + Duration::from_millis(310));
    }

    #[test]
    fn an_on_time_finish_waits_for_the_next_tick() {
        let (o, s) = sched();
        let n = s.after(1, o + Duration::from_millis(50));
        assert_eq!(
            n,
            NextTick {
                index: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn a_stall_runs_the_latest_due_tick_and_skips_the_rest() {
        let (o, s) = sched();
        // Finished at 355 ms: ticks 1 (110), 2 (210), 3 (310) are due; run 3, skip 1 and 2.
        let n = s.after(1, o + Duration::from_millis(355));
        assert_eq!(
            n,
            NextTick {
                index: 3,
                skipped: 2
            }
        );
        // Slightly late for tick 1 only: run it late, skip nothing.
        let n = s.after(1, o + Duration::from_millis(120));
        assert_eq!(
            n,
            NextTick {
                index: 1,
                skipped: 0
            }
        );
    }
}
