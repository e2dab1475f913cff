//! `findemo generate`: the data generator, in-process.
//!
//! Two tasks joined by a small bounded channel: a generator thread turns sequence
//! numbers into ready-to-send batches (binary COPY bytes, settle and delete lists), and
//! the writer sends each batch in one database transaction, paced to the target rate.
//! Every row is a pure function of (seed, sequence number), and each batch advances the
//! seed's progress row in the same transaction, so a run can be killed at any point and
//! the next run with the same seed continues exactly where the committed data ends.
//!
//! - `world`: the pools (accounts, merchants, IPs) and FX rates; `tx`: transactions;
//!   `rng`, `clock`: their building blocks.
//! - `batch`: a range of transactions as one write; `rate`: pacing.
//! - `writer`: PostgreSQL, with retries and reconnects; one WAL record per row by
//!   default (see [`crate::config::WriteMethod`]).

mod batch;
mod clock;
mod rate;
mod rng;
mod tx;
mod world;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use clock::parse_start;
pub use writer::ReferenceCounts;

use batch::{Batch, BatchMaker, Clock};
use rate::Pacer;
use tx::TxGenerator;
use world::World;
use writer::Writer;

use crate::clients::postgres::PgError;
use crate::config::{GeneratorConfig, Rate};
use crate::endpoints::PgEndpoint;

/// Batches made ahead of the writer: enough to keep it busy, few enough to stay small.
const AHEAD: usize = 3;
/// The simulated clock's rate with `--rate max` (transactions per second).
const SIMULATED_MAX_RATE: f64 = 1_000.0;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error("the stack's database lacks {missing}: run `findemo up` first")]
    NoSchema { missing: String },
    #[error(
        "another `findemo generate` is writing seed {seed} to this database.\n\
         Stop it first, or use another --seed."
    )]
    Busy { seed: u64 },
    #[error(
        "seed {seed}: this run expected the next transaction to be {expected}, but the \
         database says {found}: something else wrote this seed meanwhile.\n\
         Nothing of this batch was written. Run the command again to continue from {found}."
    )]
    Conflict {
        seed: u64,
        expected: u64,
        found: u64,
    },
    #[error("PostgreSQL: {what}: {reason}")]
    Query { what: &'static str, reason: String },
    #[error(
        "gave up writing transactions {first}..{end} after {attempts} failed attempts over \
         {:.0}s; last error: {reason}\n\
         Nothing of that batch was written; every earlier batch is committed. Check \
         `findemo status`, then run the same command again to continue.",
        waited.as_secs_f64()
    )]
    GaveUp {
        first: u64,
        end: u64,
        attempts: u32,
        waited: Duration,
        reason: String,
    },
    #[error("the generator thread failed: {0}")]
    Generator(String),
    #[error("interrupted while PostgreSQL was unreachable; every committed batch is kept")]
    Interrupted,
}

/// What the generator tells while it works (retries, recoveries).
pub trait Observer: Send + Sync {
    /// A line worth showing.
    fn notice(&self, line: &str);
    /// A failed attempt, before the retry.
    fn retry(&self, reason: &str);
}

/// Counters the progress display reads while the run goes on.
#[derive(Debug, Default)]
pub struct Stats {
    pub inserted: AtomicU64,
    pub settled: AtomicU64,
    pub deleted: AtomicU64,
    pub batches: AtomicU64,
    pub retries: AtomicU64,
    /// The seed's next transaction number (committed).
    pub next_seq: AtomicU64,
}

impl Stats {
    fn record(&self, batch: &Batch, written: &writer::Written) {
        let add = |counter: &AtomicU64, n: u64| counter.fetch_add(n, Ordering::Relaxed);
        add(&self.inserted, written.inserted);
        add(&self.settled, written.settled);
        add(&self.deleted, written.deleted);
        add(&self.batches, 1);
        add(&self.retries, written.retries.into());
        self.next_seq.store(batch.end, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: GeneratorConfig,
    /// Stop when the seed has this many transactions in total.
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    /// Timestamps from this time (Unix microseconds) instead of the wall clock.
    pub start_us: Option<i64>,
}

impl Plan {
    fn per_second(&self) -> Option<f64> {
        match self.config.rate {
            Rate::PerSecond(r) => Some(r),
            Rate::Max => None,
        }
    }

    fn clock(&self) -> Clock {
        match self.start_us {
            Some(start_us) => Clock::Simulated {
                start_us,
                step_us: 1e6 / self.per_second().unwrap_or(SIMULATED_MAX_RATE),
            },
            None => Clock::Live {
                step_us: self.per_second().map_or(0.0, |r| 1e6 / r),
            },
        }
    }

    fn batch_rows(&self) -> u64 {
        let max = u64::from(self.config.batch_rows);
        self.per_second().map_or(max, |r| Pacer::batch_rows(r, max))
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `--count` was reached (or already had been).
    Count,
    Duration,
    /// Ctrl-C, after the batch in flight.
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub stop: Stop,
    pub first_seq: u64,
    pub next_seq: u64,
    /// From the first batch to the last commit.
    pub elapsed: Duration,
}

/// A connected generator for one seed, its reference data in place.
pub struct Session {
    plan: Plan,
    world: Arc<World>,
    writer: Writer,
    next_seq: u64,
    reference: ReferenceCounts,
    /// The day after the last one with FX rates: batches add rates from here on.
    /// Computed once, so that a run starting across midnight skips no day.
    fx_from: i64,
}

impl Session {
    /// Connects, prepares the database and inserts the reference data (idempotent).
    pub async fn open(pg: &PgEndpoint, plan: Plan) -> Result<Session, GenerateError> {
        let gc = plan.config.clone();
        let mut writer = Writer::open(pg, gc.seed, gc.retry, gc.write).await?;
        let next_seq = writer.next_seq().await?;
        let (world, accounts, merchants, ips) = tokio::task::spawn_blocking(move || {
            let world = World::new(&gc);
            let accounts: Vec<_> = (0..gc.accounts).map(|i| world.account_row(i)).collect();
            let merchants: Vec<_> = (0..gc.merchants).map(|i| world.merchant_row(i)).collect();
            let ips: Vec<_> = (0..gc.ips).map(|i| world.ip_row(i)).collect();
            (world, accounts, merchants, ips)
        })
        .await
        .map_err(|e| GenerateError::Generator(e.to_string()))?;
        let first_day = clock::day_of(plan.clock().first_stamp(next_seq));
        let fx_days = first_day + 1 - i64::from(plan.config.fx_days)..first_day + 1;
        let reference = writer
            .insert_reference(&accounts, &merchants, &ips, fx_days)
            .await?;
        Ok(Session {
            plan,
            world: Arc::new(world),
            writer,
            next_seq,
            reference,
            fx_from: first_day + 1,
        })
    }

    /// Where this run starts: the seed's first uncommitted transaction.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn reference(&self) -> ReferenceCounts {
        self.reference
    }

    /// Generates until the count, the duration or `shutdown`; `stats` shows progress.
    pub async fn run(
        mut self,
        stats: &Stats,
        observer: &dyn Observer,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Outcome, GenerateError> {
        let plan = &self.plan;
        let first = self.next_seq;
        stats.next_seq.store(first, Ordering::Relaxed);
        let mut limit = plan.count.unwrap_or(u64::MAX);
        if let (Some(r), Some(d)) = (plan.per_second(), plan.duration) {
            limit = limit.min(first.saturating_add((r * d.as_secs_f64()).round() as u64));
        }
        let mut outcome = Outcome {
            stop: Stop::Count,
            first_seq: first,
            next_seq: first,
            elapsed: Duration::ZERO,
        };
        if first >= limit {
            return Ok(outcome);
        }

        let (tx, mut rx) = mpsc::channel::<Batch>(AHEAD);
        let mut maker = BatchMaker::new(
            TxGenerator::new(self.world.clone(), &plan.config),
            plan.clock(),
            plan.config.settle_after,
            plan.config.delete_after,
            self.fx_from,
        );
        let rows = plan.batch_rows();
        let max_rows = u64::from(plan.config.batch_rows);
        let producer = tokio::task::spawn_blocking(move || {
            let mut at = first;
            while at < limit {
                let end = at.saturating_add(rows).min(limit);
                if tx.blocking_send(maker.make(at, end)).is_err() {
                    break; // The writer stopped.
                }
                at = end;
            }
        });

        let started = Instant::now();
        let deadline = plan.duration.map(|d| started + d);
        let mut pacer = plan.per_second().map(|r| Pacer::new(r, first, started));
        let stop = loop {
            if *shutdown.borrow() {
                break Stop::Interrupted;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Stop::Duration;
            }
            let batch = tokio::select! {
                batch = rx.recv() => batch,
                _ = stopped(&mut shutdown) => break Stop::Interrupted,
            };
            let Some(mut batch) = batch else {
                break Stop::Count;
            };
            if let Some(pacer) = &mut pacer {
                let now = Instant::now();
                let mut due = pacer.due_or_restart(batch.first, batch.end, now);
                // Behind schedule (a slow commit): catch up with bigger transactions
                // rather than more of them.
                while due < now && batch.rows() < max_rows {
                    match rx.try_recv() {
                        Ok(next) => {
                            batch.append(next);
                            due = pacer.due(batch.end);
                        }
                        Err(_) => break,
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = stopped(&mut shutdown) => break Stop::Interrupted,
                }
            }
            // Not raced with Ctrl-C: a batch in flight completes (or fails) whole.
            let written = self.writer.write(&batch, observer, &mut shutdown).await?;
            stats.record(&batch, &written);
            outcome.next_seq = batch.end;
            outcome.elapsed = started.elapsed();
        };
        drop(rx);
        producer
            .await
            .map_err(|e| GenerateError::Generator(e.to_string()))?;
        if stop == Stop::Count && outcome.next_seq < limit {
            return Err(GenerateError::Generator(format!(
                "it stopped at transaction {} of {limit}",
                outcome.next_seq
            )));
        }
        outcome.stop = match stop {
            // A paced --duration run ends by count: say what the user asked for.
            Stop::Count if plan.count.is_none_or(|c| outcome.next_seq < c) => Stop::Duration,
            other => other,
        };
        Ok(outcome)
    }
}

/// Resolves once `shutdown` is set (never, if its sender is gone unset).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rate: Rate, start_us: Option<i64>) -> Plan {
        Plan {
            config: GeneratorConfig {
                rate,
                ..GeneratorConfig::default()
            },
            count: None,
            duration: None,
            start_us,
        }
    }

    #[test]
    fn clocks_and_batch_sizes_follow_the_rate() {
        let paced = plan(Rate::PerSecond(5_000.0), None);
        assert_eq!(paced.batch_rows(), 250);
        assert_eq!(paced.clock(), Clock::Live { step_us: 200.0 });
        let max = plan(Rate::Max, Some(42));
        assert_eq!(max.batch_rows(), 10_000);
        assert_eq!(
            max.clock(),
            Clock::Simulated {
                start_us: 42,
                step_us: 1_000.0
            }
        );
    }

    #[tokio::test]
    async fn stopped_waits_for_the_flag_and_not_for_a_dropped_sender() {
        let (tx, mut rx) = watch::channel(false);
        let waiting = tokio::time::timeout(Duration::from_millis(20), stopped(&mut rx));
        assert!(waiting.await.is_err());
        tx.send(true).unwrap();
        stopped(&mut rx).await;
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        let waiting = tokio::time::timeout(Duration::from_millis(20), stopped(&mut rx));
        assert!(waiting.await.is_err());
    }
}
