//! Pacing: a batch is written when the schedule says its last row is due, so the
//! rate is steady (small batches, evenly spaced) and exact over time (deadlines, not
//! sleeps, so delays do not add up). A writer that fell a little behind catches up
//! with bigger transactions; after an outage the schedule restarts from now rather
//! than bursting to catch up.

use std::time::{Duration, Instant};

/// How many batches per second a paced run aims for: small enough to be smooth.
const BATCHES_PER_SECOND: f64 = 20.0;
/// Falling further behind than this (an outage, not a hiccup) restarts the schedule;
/// a smaller lag is caught up, by writing more rows per transaction.
const MAX_LAG: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Pacer {
    per_second: f64,
    /// When the row at `origin_seq` was due.
    origin: Instant,
    origin_seq: u64,
}

impl Pacer {
    /// A schedule of `per_second` rows starting at row `first`, `now`.
    pub fn new(per_second: f64, first: u64, now: Instant) -> Pacer {
        Pacer {
            per_second,
            origin: now,
            origin_seq: first,
        }
    }

    /// Rows per batch for a steady rate, at most `max_rows`.
    pub fn batch_rows(per_second: f64, max_rows: u64) -> u64 {
        ((per_second / BATCHES_PER_SECOND).ceil() as u64).clamp(1, max_rows)
    }

    /// When the batch ending before row `end` may be written.
    pub fn due(&self, end: u64) -> Instant {
        let rows = end.saturating_sub(self.origin_seq) as f64;
        self.origin + Duration::from_secs_f64(rows / self.per_second)
    }

    /// The due time of the batch `first..end`; if the schedule is more than
    /// [`MAX_LAG`] behind `now` (PostgreSQL was away), it restarts so that this batch is
    /// due one batch-interval from now.
    pub fn due_or_restart(&mut self, first: u64, end: u64, now: Instant) -> Instant {
        let due = self.due(end);
        if now.saturating_duration_since(due) > MAX_LAG {
            // Row `first` starts now; the batch is due one batch-interval later.
            *self = Pacer::new(self.per_second, first, now);
            return self.due(end);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes() {
        assert_eq!(Pacer::batch_rows(5_000.0, 10_000), 250);
        assert_eq!(Pacer::batch_rows(1.0, 10_000), 1);
        assert_eq!(Pacer::batch_rows(0.5, 10_000), 1);
        assert_eq!(Pacer::batch_rows(1e7, 10_000), 10_000);
    }

    #[test]
    fn deadlines_follow_the_rate_exactly() {
        let t0 = Instant::now();
        let p = Pacer::new(5_000.0, 1_000, t0);
        assert_eq!(p.due(1_000), t0);
        assert_eq!(p.due(1_250), t0 + Duration::from_millis(50));
        // A minute of rows is due a minute later: no drift from batch rounding.
        assert_eq!(p.due(1_000 + 300_000), t0 + Duration::from_secs(60));
    }

    #[test]
    fn a_late_schedule_restarts_instead_of_bursting() {
        let t0 = Instant::now();
        let mut p = Pacer::new(100.0, 0, t0);
        // Slightly late: keep the schedule (catch up the small lag).
        let late = t0 + Duration::from_millis(600);
        assert_eq!(
            p.due_or_restart(0, 50, late),
            t0 + Duration::from_millis(500)
        );
        // Ten seconds late (an outage): this batch is due one interval from now.
        let outage = t0 + Duration::from_secs(10);
        assert_eq!(
            p.due_or_restart(50, 55, outage),
            outage + Duration::from_millis(50)
        );
        assert_eq!(p.due(65), outage + Duration::from_millis(150));
    }
}
