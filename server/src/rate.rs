//! A fixed-window rate limit: at most N events per one-second window. Used to keep the WARN lines
//! about malformed Socket.IO events to a few a second however fast a peer sends them (each
//! suppressed line is counted and reported with the next one that may be written, as the Linux
//! kernel's `printk_ratelimit` does), and to spot a socket that sends too many of them.
//!
//! Fixed windows rather than a token bucket: the bound is easy to state (at most N in any window
//! starting at a window boundary, so at most 2N within any one second) and to test.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// At most `limit` admitted events per one-second window; thread-safe.
#[derive(Debug)]
pub struct RateLimit {
    limit: u32,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    admitted: u32,
    /// Refused since the last admitted event.
    refused: u64,
}

/// The verdict on one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within the limit; `refused_before` events were refused since the last admitted one.
    Yes { refused_before: u64 },
    /// Over the limit for the current window.
    No,
}

impl RateLimit {
    /// `limit` events per second; 0 admits none.
    pub fn per_second(limit: u32) -> Self {
        RateLimit {
            limit,
            state: Mutex::new(Window {
                start: None,
                admitted: 0,
                refused: 0,
            }),
        }
    }

    /// Counts one event at `now` (callers pass `Instant::now()`; tests pass their own clock).
    pub fn admit(&self, now: Instant) -> Admit {
        // A panic while holding this lock leaves at worst a stale count.
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let expired = w
            .start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if expired {
            w.start = Some(now);
            w.admitted = 0;
        }
        if w.admitted < self.limit {
            w.admitted += 1;
            Admit::Yes {
                refused_before: std::mem::take(&mut w.refused),
            }
        } else {
            w.refused += 1;
            Admit::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_limit_per_window_and_reports_what_it_refused() {
        let t0 = Instant::now();
        let limit = RateLimit::per_second(3);
        let verdicts: Vec<Admit> = (0..5)
            .map(|i| limit.admit(t0 + Duration::from_millis(i * 10)))
            .collect();
        assert_eq!(
            verdicts,
            [
                Admit::Yes { refused_before: 0 },
                Admit::Yes { refused_before: 0 },
                Admit::Yes { refused_before: 0 },
                Admit::No,
                Admit::No,
            ]
        );
        // The next window admits again and hands over the count of the refused.
        assert_eq!(
            limit.admit(t0 + Duration::from_millis(1000)),
            Admit::Yes { refused_before: 2 }
        );
        assert_eq!(
            limit.admit(t0 + Duration::from_millis(1001)),
            Admit::Yes { refused_before: 0 }
        );
    }

    #[test]
    fn zero_admits_nothing_and_a_clock_going_backwards_does_not_panic() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let none = RateLimit::per_second(0);
        assert_eq!(none.admit(t0), Admit::No);
        let one = RateLimit::per_second(1);
        assert!(matches!(one.admit(t0), Admit::Yes { .. }));
        assert_eq!(one.admit(t0 - Duration::from_secs(1)), Admit::No);
    }
}
