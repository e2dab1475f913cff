//! `findemo bench`: the pipeline's own figures, measured on a running stack while the
//! in-process generator ([`crate::generate::Session`]) writes real transactions.
//!
//! - `freshness`: probe changes committed to PostgreSQL and polled for in silver,
//!   timed on findemo's monotonic clock (one clock: no server's clock is compared).
//! - `throughput`: the rate stepped up until a stage's backlog stops being bounded.
//!
//! This file holds what both share: the error type, the generator's plan, and the pure
//! figures (percentiles).

pub mod freshness;
pub mod throughput;

use std::time::Duration;

use serde::Serialize;

use crate::clients::clickhouse::ChError;
use crate::clients::kafka::{KafkaError, TopicEnd};
use crate::clients::postgres::PgError;
use crate::config::{Config, GeneratorFlags, Rate};
use crate::endpoints::KafkaEndpoint;
use crate::generate::{GenerateError, Observer, Plan};
use crate::progress::Printer;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error(transparent)]
    ClickHouse(#[from] ChError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("PostgreSQL: {what}: {reason}")]
    Query { what: &'static str, reason: String },
    #[error(
        "the first probe change did not reach ClickHouse's silver layer within {}s: the \
         pipeline does not flow. `findemo status` shows where it stops.",
        .0.as_secs()
    )]
    NoFlow(Duration),
    #[error(
        "no settled transaction to probe appeared in PostgreSQL within {}s of generating",
        .0.as_secs()
    )]
    NoProbeRow(Duration),
    #[error("ClickHouse: {what}: unexpected answer {text:?}")]
    Answer { what: &'static str, text: String },
    #[error("{what} failed for {}s in a row; last error: {last}", .secs)]
    Polling {
        what: &'static str,
        secs: u64,
        last: String,
    },
}

/// The generator's plan for a bench run: `rate` for `duration`, the configured
/// `generator:` section otherwise.
pub fn generator_plan(
    config: &Config,
    rate: f64,
    duration: Duration,
    seed: Option<u64>,
) -> Result<Plan, BenchError> {
    let flags = GeneratorFlags {
        seed,
        rate: Some(Rate::PerSecond(rate)),
        ..GeneratorFlags::default()
    };
    Ok(Plan {
        config: config.generator.with_flags(&flags)?,
        count: None,
        duration: Some(duration),
        start_us: None,
    })
}

/// A fresh probe token: random, so that no earlier run's row can match it.
pub fn probe_token() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!("bench-{}", Alphanumeric.sample_string(&mut rand::rng(), 16))
}

/// How long one read of a topic's end may take.
pub const KAFKA_TIMEOUT: Duration = Duration::from_secs(5);

/// A reader of the end offset of `table`'s topic on the stack's broker.
pub async fn topic_end(
    config: &Config,
    broker: &KafkaEndpoint,
    table: &str,
) -> Result<TopicEnd, BenchError> {
    let topic = crate::catalogue::topic_name(&config.stack, table);
    Ok(TopicEnd::open(broker, &topic, KAFKA_TIMEOUT).await?)
}

/// The generator's retries and notices, as progress lines.
pub struct BenchObserver<'a>(pub &'a Printer);

impl Observer for BenchObserver<'_> {
    fn notice(&self, line: &str) {
        self.0.line(format!("generate: {line}"));
    }

    fn retry(&self, _reason: &str) {}
}

/// Percentiles of a set of durations, in milliseconds. Nearest rank: p95 is the
/// smallest value with at least 95 % of the values at or below it, so every figure
/// is one that was measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// `None` when there is nothing to summarise.
    pub fn of(values_ms: &[f64]) -> Option<Summary> {
        let mut sorted: Vec<f64> = values_ms
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        // A tenth of a millisecond is finer than a 10 ms poll can tell.
        let tenth = |v: f64| (v * 10.0).round() / 10.0;
        Some(Summary {
            count: sorted.len(),
            min_ms: tenth(sorted[0]),
            p50_ms: tenth(percentile(&sorted, 50.0)),
            p95_ms: tenth(percentile(&sorted, 95.0)),
            p99_ms: tenth(percentile(&sorted, 99.0)),
            max_ms: tenth(sorted[sorted.len() - 1]),
        })
    }
}

/// The nearest-rank percentile `p` (0-100] of `sorted` (ascending, not empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = Summary::of(&values).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(
            (s.min_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms),
            (1.0, 50.0, 95.0, 99.0, 100.0)
        );
        let one = Summary::of(&[7.0]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (7.0, 7.0, 7.0));
        // Ten values: p95 and p99 are the largest, p50 the fifth.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = Summary::of(&ten).unwrap();
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms), (5.0, 10.0, 10.0));
        assert_eq!(Summary::of(&[1.23456]).unwrap().p50_ms, 1.2);
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[f64::NAN]), None);
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(probe_token(), probe_token());
        assert!(probe_token().starts_with("bench-"));
    }
}
