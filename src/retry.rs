//! Bounded retries with backoff: one place that says how long to pause between
//! attempts and when to give up, for every loop that waits for a service or retries a
//! call.
//!
//! Callers keep their own loop, because each decides what counts as done, what is
//! transient and what to say when it gives up; a [`Backoff`] only answers "pause this
//! long before the next attempt" or "stop now".

use std::time::{Duration, Instant};

/// When a [`Backoff`] gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// After this many attempts in all.
    Attempts(u32),
    /// Once this long has passed since the first attempt, checked after each attempt:
    /// the last pause may end a little past it, and one more attempt then runs.
    Until(Duration),
    /// Rather than start a pause that would end more than this long after the first
    /// attempt.
    Within(Duration),
}

/// The pauses between attempts (doubling from a first one up to a ceiling) and the
/// limit after which there is no next attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    started: Instant,
    pause: Duration,
    max: Duration,
    limit: Limit,
    failures: u32,
}

impl Backoff {
    /// Pauses of `first`, then twice as long each time up to `max`, until `limit`.
    /// Time limits count from now.
    pub fn new(limit: Limit, first: Duration, max: Duration) -> Backoff {
        Backoff {
            started: Instant::now(),
            pause: first,
            max,
            limit,
            failures: 0,
        }
    }

    /// The same pause each time, until `limit`.
    pub fn constant(limit: Limit, pause: Duration) -> Backoff {
        Backoff::new(limit, pause, pause)
    }

    /// Call after a failed attempt: the pause before the next one, or `None` when the
    /// limit is reached.
    pub fn next(&mut self) -> Option<Duration> {
        let elapsed = self.started.elapsed();
        self.next_after(elapsed)
    }

    fn next_after(&mut self, elapsed: Duration) -> Option<Duration> {
        self.failures += 1;
        let pause = self.pause;
        let stop = match self.limit {
            Limit::Attempts(n) => self.failures >= n,
            Limit::Until(timeout) => elapsed >= timeout,
            Limit::Within(timeout) => elapsed + pause > timeout,
        };
        if stop {
            return None;
        }
        self.pause = (pause * 2).min(self.max);
        Some(pause)
    }

    /// Call after a failed attempt: sleeps the pause before the next one and returns
    /// true, or returns false at once when the limit is reached.
    pub async fn wait(&mut self) -> bool {
        match self.next() {
            Some(pause) => {
                tokio::time::sleep(pause).await;
                true
            }
            None => false,
        }
    }

    /// Failed attempts so far (calls of [`Backoff::next`] or [`Backoff::wait`]).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Time since the backoff was made.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The pauses a backoff gives when each attempt takes `attempt` long.
    fn pauses(mut backoff: Backoff, attempt: Duration) -> Vec<u64> {
        let mut elapsed = Duration::ZERO;
        let mut out = Vec::new();
        loop {
            elapsed += attempt;
            match backoff.next_after(elapsed) {
                Some(pause) => {
                    out.push(pause.as_millis() as u64);
                    elapsed += pause;
                }
                None => return out,
            }
        }
    }

    #[test]
    fn attempts_limit_counts_every_attempt() {
        let backoff = Backoff::new(Limit::Attempts(6), 250 * MS, 4000 * MS);
        assert_eq!(pauses(backoff, MS), [250, 500, 1000, 2000, 4000]);
        let backoff = Backoff::constant(Limit::Attempts(1), 200 * MS);
        assert_eq!(pauses(backoff, MS), Vec::<u64>::new());
    }

    #[test]
    fn until_checks_the_time_after_each_attempt() {
        // Attempts at 0, 100, 300, 700, 1500, 2500 ms; the one at 2500 is past 2 s.
        let backoff = Backoff::new(Limit::Until(2000 * MS), 100 * MS, 1000 * MS);
        assert_eq!(pauses(backoff, Duration::ZERO), [100, 200, 400, 800, 1000]);
        let backoff = Backoff::constant(Limit::Until(1000 * MS), 500 * MS);
        assert_eq!(pauses(backoff, Duration::ZERO), [500, 500]);
    }

    #[test]
    fn within_never_pauses_past_the_limit() {
        // After 700 ms a pause of 800 would end at 1500 > 1000: stop.
        let mut backoff = Backoff::new(Limit::Within(1000 * MS), 100 * MS, 5000 * MS);
        assert_eq!(pauses(backoff.clone(), Duration::ZERO), [100, 200, 400]);
        assert_eq!(backoff.next_after(Duration::ZERO), Some(100 * MS));
        assert_eq!(backoff.failures(), 1);
    }
}
