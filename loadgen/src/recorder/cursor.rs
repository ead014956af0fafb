//! What one receiver has seen of each sender's probes, and whether a delivery is new.

/// The verdict on one delivery, from a receiver's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    New,
    /// New, but a later probe of the same sender came first.
    NewOutOfOrder,
    Duplicate,
}

/// What one receiver has seen of one sender: everything below `next`, plus the sequence numbers
/// above it (gaps still open), kept sorted. Normally `ahead` is empty and never allocates; on a
/// lossy server it holds every probe after the first gap, so lookups are binary searches.
#[derive(Debug, Clone, Default)]
pub(crate) struct SenderCursor {
    pub(crate) next: u64,
    max_seen: Option<u64>,
    ahead: Vec<u64>,
    /// Stale-answer checks start here: every probe below it is seen or can no longer be owed.
    pub(crate) settled_to: u64,
}

impl SenderCursor {
    pub(crate) fn observe(&mut self, seq: u64) -> Seen {
        if self.has_seen(seq) {
            return Seen::Duplicate;
        }
        let out_of_order = self.max_seen.is_some_and(|m| seq < m);
        self.max_seen = Some(self.max_seen.map_or(seq, |m| m.max(seq)));
        if seq == self.next {
            self.next += 1;
            // `ahead` is sorted: consume the run that now continues `next`.
            let run = self
                .ahead
                .iter()
                .zip(self.next..)
                .take_while(|(s, n)| **s == *n)
                .count();
            self.ahead.drain(..run);
            self.next += run as u64;
        } else if let Err(pos) = self.ahead.binary_search(&seq) {
            self.ahead.insert(pos, seq);
        }
        if out_of_order {
            Seen::NewOutOfOrder
        } else {
            Seen::New
        }
    }

    pub(crate) fn has_seen(&self, seq: u64) -> bool {
        seq < self.next || self.ahead.binary_search(&seq).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_tells_new_duplicate_and_out_of_order() {
        let mut c = SenderCursor::default();
        assert_eq!(c.observe(0), Seen::New);
        assert_eq!(c.observe(2), Seen::New);
        assert_eq!(c.observe(1), Seen::NewOutOfOrder);
        assert_eq!(c.observe(1), Seen::Duplicate);
        assert_eq!(c.observe(2), Seen::Duplicate);
        assert_eq!(c.next, 3);
        assert!(c.ahead.is_empty());
        assert_eq!(c.observe(3), Seen::New);
    }

    #[test]
    fn a_gap_keeps_later_probes_sorted_until_it_closes() {
        let mut c = SenderCursor::default();
        for seq in [0, 5, 3, 4, 2] {
            c.observe(seq);
        }
        assert_eq!(c.next, 1);
        assert_eq!(c.ahead, vec![2, 3, 4, 5]);
        assert!(c.has_seen(4) && !c.has_seen(1) && !c.has_seen(6));
        assert_eq!(c.observe(1), Seen::NewOutOfOrder);
        assert_eq!(c.next, 6);
        assert!(c.ahead.is_empty());
    }
}
