//! `bench throughput`: the generator's rate stepped up, each step judged by whether
//! every stage kept up with it.
//!
//! Once a second during a step findemo reads, for `raw_transactions`: the changes the
//! generator committed (inserts, settling updates, deletes), the topic's end offset,
//! the ClickHouse consumer group's lag, and the change events landed in bronze (silver
//! is written from the same consumed block). Three backlogs follow, counted from the
//! run's start: Debezium's (committed, not yet in Kafka), Kafka -> ClickHouse (the
//! group's lag) and end to end (committed, not yet in ClickHouse).
//!
//! The rule, [`bounded`]: a backlog is bounded over a step when its smallest value in
//! the step's second half exceeds its smallest value in the first half by no more than
//! [`SLACK`] of input at the step's rate, and for the two ClickHouse backlogs by no
//! more than one ClickHouse block ([`CLICKHOUSE_BLOCK_EVENTS`]) if that is more.
//! Minima, not single readings, because ClickHouse's Kafka engine inserts and commits
//! whole blocks: on the test bed (ClickHouse 18.16) up to 8,192 rows at a time (1,024
//! on tables findemo created since its tuning), or what it has when the topic goes
//! quiet. So a healthy backlog is a saw tooth, one block high,
//! with an insert every 8,192 / rate seconds: each half of a step (at least 15 s)
//! holds one from about 550 tx/s up, and below that the block's slack covers the
//! climb. A stage that cannot keep up grows its backlog by (rate - capacity) times
//! half a step; a shortfall smaller than the slack is not told apart.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use super::{generator_plan, topic_end, BenchError, BenchObserver, KAFKA_TIMEOUT};
use crate::catalogue::{clickhouse_group, topic_name};
use crate::clients::clickhouse::ClickHouse;
use crate::clients::kafka::TopicEnd;
use crate::clients::{kafka, postgres};
use crate::config::Config;
use crate::endpoints::Endpoints;
use crate::generate::{Session, Stats};
use crate::progress::Printer;

/// Input at the step's rate a backlog may grow by between the halves of a step.
pub const SLACK: Duration = Duration::from_secs(2);
/// Rows ClickHouse 18.16's Kafka engine may read before it inserts: the test bed's
/// default block (inserts of exactly 8,192 rows under steady load, seen before
/// findemo set 1,024 on its tables), so older stacks are judged fairly too.
pub const CLICKHOUSE_BLOCK_EVENTS: i64 = 8192;
/// The generator reached the rate when it wrote at least this share of it.
pub const GENERATOR_SHARE: f64 = 0.95;
/// Time between readings within a step.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

pub const RULE: &str = "a backlog is bounded when its minimum over the step's second \
     half exceeds its minimum over the first half by at most 2 s of input at the \
     step's rate (for the ClickHouse backlogs, at least one 8,192-row ClickHouse \
     block); the generator reached the rate when it wrote >= 95 % of it";

/// The stage that could not keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The generator (PostgreSQL's writes) could not reach the rate.
    Generator,
    /// Committed changes piled up before Kafka: Debezium and Connect's producer.
    Debezium,
    /// Events piled up in Kafka: ClickHouse's Kafka engine.
    KafkaToClickhouse,
    /// Every stage's own backlog was bounded, yet the end-to-end one grew.
    EndToEnd,
}

impl Stage {
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Generator => "the generator: PostgreSQL took fewer transactions than asked",
            Stage::Debezium => "Debezium: committed changes pile up before Kafka",
            Stage::KafkaToClickhouse => "Kafka -> ClickHouse: the consumer group's lag grows",
            Stage::EndToEnd => "end to end: changes pile up before bronze/silver",
        }
    }
}

/// One reading within a step.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Seconds since the step began.
    at: f64,
    debezium: i64,
    clickhouse: i64,
    end_to_end: i64,
    slot_lag_bytes: Option<i64>,
}

/// A backlog over one step: its minimum in each half.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Backlog {
    pub first_half_min_events: Option<i64>,
    pub second_half_min_events: Option<i64>,
    pub bounded: bool,
}

#[derive(Debug, Serialize)]
pub struct StepReport {
    pub target_rate_per_sec: u32,
    pub achieved_rate_per_sec: f64,
    pub debezium: Backlog,
    pub kafka_to_clickhouse: Backlog,
    pub end_to_end: Backlog,
    /// WAL kept for Debezium at the step's end (advances when Connect flushes its
    /// offsets, so only a hint).
    pub slot_lag_bytes_end: Option<i64>,
    pub sustained: bool,
    /// The first stage that did not keep up, when not sustained.
    pub saturated: Option<Stage>,
}

#[derive(Debug, Serialize)]
pub struct ThroughputReport {
    pub rule: &'static str,
    pub step_duration_secs: f64,
    pub steps: Vec<StepReport>,
    /// The highest target rate sustained for a whole step, end to end.
    pub sustained_rate_per_sec: Option<u32>,
    pub saturated: Option<Stage>,
    pub saturated_at_rate_per_sec: Option<u32>,
}

/// The steps' rates: `start`, `start + step`, ... up to `max`.
pub fn rates(start: u32, step: u32, max: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut rate = start;
    while rate <= max {
        out.push(rate);
        match rate.checked_add(step.max(1)) {
            Some(next) => rate = next,
            None => break,
        }
    }
    out
}

/// The growth allowed to a backlog between the halves of a step at `rate`: [`SLACK`]
/// of input, and at least `floor` events.
pub fn slack(rate: u32, floor: i64) -> i64 {
    ((f64::from(rate) * SLACK.as_secs_f64()) as i64).max(floor)
}

/// Whether a backlog read as `(seconds into the step, events)` stayed bounded over a
/// step of `duration`, growing by no more than `slack` events; see the module's
/// comment.
pub fn bounded(samples: &[(f64, i64)], duration: Duration, slack: i64) -> Backlog {
    let half = duration.as_secs_f64() / 2.0;
    let min = |keep: &dyn Fn(f64) -> bool| {
        samples
            .iter()
            .filter(|(at, _)| keep(*at))
            .map(|(_, n)| *n)
            .min()
    };
    let first = min(&|at| at < half);
    let second = min(&|at| at >= half);
    Backlog {
        first_half_min_events: first,
        second_half_min_events: second,
        // Unknown (no reading in a half) is not proof of keeping up.
        bounded: matches!((first, second), (Some(a), Some(b)) if b <= a + slack),
    }
}

/// The first stage, upstream first, that did not keep up; `None` when all did.
pub fn saturated(
    target: u32,
    achieved: f64,
    debezium: &Backlog,
    clickhouse: &Backlog,
    end_to_end: &Backlog,
) -> Option<Stage> {
    if achieved < f64::from(target) * GENERATOR_SHARE {
        Some(Stage::Generator)
    } else if !debezium.bounded {
        Some(Stage::Debezium)
    } else if !clickhouse.bounded {
        Some(Stage::KafkaToClickhouse)
    } else if !end_to_end.bounded {
        Some(Stage::EndToEnd)
    } else {
        None
    }
}

/// Counters read from the start of the run, so backlogs are differences.
#[derive(Debug, Clone, Copy)]
struct Baseline {
    kafka: i64,
    landed: i64,
}

/// What findemo reads once a second.
struct Readers<'a> {
    config: &'a Config,
    endpoints: &'a Endpoints,
    ch: ClickHouse,
    pg: tokio_postgres::Client,
    topic: TopicEnd,
    slot: String,
}

impl Readers<'_> {
    /// The events the transactions topic has received.
    async fn kafka_end(&self) -> Result<i64, BenchError> {
        Ok(self.topic.end(KAFKA_TIMEOUT).await?)
    }

    async fn landed(&self) -> Result<i64, BenchError> {
        let text = self
            .ch
            .exec("SELECT count() FROM bronze.raw_transactions")
            .await?;
        text.trim().parse().map_err(|_| BenchError::Answer {
            what: "counting bronze.raw_transactions",
            text: text.trim().to_string(),
        })
    }

    async fn consumer_lag(&self) -> Result<i64, BenchError> {
        let stack = &self.config.stack;
        let lag = kafka::group_lag(
            &self.endpoints.kafka,
            &clickhouse_group(stack, "raw_transactions"),
            &topic_name(stack, "raw_transactions"),
            Duration::from_secs(5),
        )
        .await?;
        Ok(lag.lag_events)
    }

    async fn slot_lag(&self) -> Option<i64> {
        self.pg
            .query_opt(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .await
            .ok()
            .flatten()
            .and_then(|row| row.get::<_, Option<i64>>(0))
    }
}

/// Steps the rate through `rates`, each for `duration`, until a step is not sustained.
pub async fn run(
    config: &Config,
    endpoints: &Endpoints,
    printer: &Printer,
    rates: &[u32],
    duration: Duration,
    seed: Option<u64>,
) -> Result<ThroughputReport, BenchError> {
    let readers = Readers {
        config,
        endpoints,
        ch: ClickHouse::new(&endpoints.clickhouse),
        pg: postgres::connect(&endpoints.postgres).await?,
        topic: topic_end(config, &endpoints.kafka, "raw_transactions").await?,
        slot: crate::pipeline::slot_name(&config.stack),
    };
    let (kafka, landed) = tokio::try_join!(readers.kafka_end(), readers.landed())?;
    let base = Baseline { kafka, landed };
    // Changes the generator committed in earlier steps of this run.
    let mut committed_before = 0i64;
    let mut report = ThroughputReport {
        rule: RULE,
        step_duration_secs: duration.as_secs_f64(),
        steps: Vec::new(),
        sustained_rate_per_sec: None,
        saturated: None,
        saturated_at_rate_per_sec: None,
    };
    for &rate in rates {
        let task = printer.task(
            "bench",
            &format!("step {} tx/s", crate::progress::thousands(rate.into())),
        );
        let plan = generator_plan(config, f64::from(rate), duration, seed)?;
        let session = Session::open(&endpoints.postgres, plan).await?;
        let stats = Stats::default();
        let observer = BenchObserver(printer);
        let (_keep, never) = watch::channel(false);
        let generating =
            async { Ok::<_, BenchError>(session.run(&stats, &observer, never).await?) };
        let sampling = sample_step(
            &readers,
            base,
            committed_before,
            &stats,
            duration,
            &task,
            rate,
        );
        let (outcome, samples) = tokio::try_join!(generating, sampling)?;
        let changes = |s: &Stats| {
            (Stats::get(&s.inserted) + Stats::get(&s.settled) + Stats::get(&s.deleted)) as i64
        };
        committed_before += changes(&stats);
        let secs = outcome.elapsed.as_secs_f64();
        let achieved = if secs > 0.0 {
            ((outcome.next_seq - outcome.first_seq) as f64 / secs).round()
        } else {
            0.0
        };
        let series = |f: fn(&Sample) -> i64| -> Vec<(f64, i64)> {
            samples.iter().map(|s| (s.at, f(s))).collect()
        };
        let (fine, block) = (slack(rate, 0), slack(rate, CLICKHOUSE_BLOCK_EVENTS));
        let debezium = bounded(&series(|s| s.debezium), duration, fine);
        let clickhouse = bounded(&series(|s| s.clickhouse), duration, block);
        let end_to_end = bounded(&series(|s| s.end_to_end), duration, block);
        let stage = saturated(rate, achieved, &debezium, &clickhouse, &end_to_end);
        task.done(&format!(
            "{} tx/s: achieved {}/s, {}",
            crate::progress::thousands(rate.into()),
            crate::progress::thousands(achieved.round() as u64),
            match stage {
                None => "sustained".to_string(),
                Some(stage) => format!("not sustained: {}", stage.describe()),
            }
        ));
        report.steps.push(StepReport {
            target_rate_per_sec: rate,
            achieved_rate_per_sec: achieved,
            debezium,
            kafka_to_clickhouse: clickhouse,
            end_to_end,
            slot_lag_bytes_end: samples.last().and_then(|s| s.slot_lag_bytes),
            sustained: stage.is_none(),
            saturated: stage,
        });
        match stage {
            None => report.sustained_rate_per_sec = Some(rate),
            Some(stage) => {
                report.saturated = Some(stage);
                report.saturated_at_rate_per_sec = Some(rate);
                break;
            }
        }
    }
    Ok(report)
}

/// Reads the backlogs every [`SAMPLE_EVERY`] for `duration`. A reading that fails is
/// skipped (the rule needs one per half); 30 s of failures end the run.
async fn sample_step(
    readers: &Readers<'_>,
    base: Baseline,
    committed_before: i64,
    stats: &Stats,
    duration: Duration,
    task: &crate::progress::Task,
    rate: u32,
) -> Result<Vec<Sample>, BenchError> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    let mut last_ok = Instant::now();
    loop {
        every.tick().await;
        let at = started.elapsed();
        if at > duration {
            return Ok(samples);
        }
        let committed = committed_before
            + (Stats::get(&stats.inserted)
                + Stats::get(&stats.settled)
                + Stats::get(&stats.deleted)) as i64;
        let read = tokio::try_join!(
            readers.kafka_end(),
            readers.consumer_lag(),
            readers.landed()
        );
        let slot_lag_bytes = readers.slot_lag().await;
        match read {
            Ok((kafka, lag, landed)) => {
                last_ok = Instant::now();
                let sample = Sample {
                    at: at.as_secs_f64(),
                    debezium: (committed - (kafka - base.kafka)).max(0),
                    clickhouse: lag,
                    end_to_end: (committed - (landed - base.landed)).max(0),
                    slot_lag_bytes,
                };
                task.message(&format!(
                    "{} tx/s · {:.0}s · written {} · behind: Debezium {}, ClickHouse {}, end to end {}",
                    crate::progress::thousands(rate.into()),
                    at.as_secs_f64(),
                    crate::progress::thousands(Stats::get(&stats.inserted)),
                    sample.debezium,
                    sample.clickhouse,
                    sample.end_to_end
                ));
                samples.push(sample);
            }
            Err(e) if last_ok.elapsed() >= Duration::from_secs(30) => {
                return Err(BenchError::Polling {
                    what: "reading the pipeline's backlogs",
                    secs: 30,
                    last: e.to_string(),
                });
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_go_up_to_the_maximum() {
        assert_eq!(rates(2500, 2500, 10000), vec![2500, 5000, 7500, 10000]);
        assert_eq!(rates(100, 50, 220), vec![100, 150, 200]);
        assert_eq!(rates(500, 100, 400), Vec::<u32>::new());
        assert_eq!(rates(u32::MAX, 1, u32::MAX), vec![u32::MAX]);
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_saw_tooth_backlog_is_bounded() {
        // ClickHouse inserts a block every ~7 s: the lag climbs and drops back.
        let samples: Vec<(f64, i64)> = (1..=30)
            .map(|t| (f64::from(t), i64::from(t % 7) * 1000))
            .collect();
        let b = bounded(&samples, secs(30), slack(1000, 0));
        assert!(b.bounded, "{b:?}");
        assert_eq!(
            (b.first_half_min_events, b.second_half_min_events),
            (Some(0), Some(0))
        );
        // At 100/s a block fills in 82 s: no insert within the step, and the climb
        // stays within one block.
        let climbing: Vec<(f64, i64)> = (1..=30)
            .map(|t| (f64::from(t), i64::from(t) * 100))
            .collect();
        let block = slack(100, CLICKHOUSE_BLOCK_EVENTS);
        assert!(bounded(&climbing, secs(30), block).bounded);
        assert!(!bounded(&climbing, secs(30), slack(100, 0)).bounded);
        assert_eq!(
            (
                slack(1000, 0),
                block,
                slack(10_000, CLICKHOUSE_BLOCK_EVENTS)
            ),
            (2000, 8192, 20_000)
        );
    }

    #[test]
    fn a_growing_backlog_is_not() {
        // 1,000/s in, 800/s out: 200 more each second.
        let samples: Vec<(f64, i64)> = (1..=30)
            .map(|t| (f64::from(t), i64::from(t) * 200))
            .collect();
        let b = bounded(&samples, secs(30), slack(1000, 0));
        assert!(!b.bounded, "{b:?}");
        // Within the slack (2 s of input = 2,000 events over 15 s): bounded.
        let slow: Vec<(f64, i64)> = (1..=30)
            .map(|t| (f64::from(t), i64::from(t) * 100))
            .collect();
        assert!(bounded(&slow, secs(30), slack(1000, 0)).bounded);
        // A draining backlog is bounded.
        let draining: Vec<(f64, i64)> = (1..=30)
            .map(|t| (f64::from(t), 9000 - i64::from(t) * 300))
            .collect();
        assert!(bounded(&draining, secs(30), slack(1000, 0)).bounded);
    }

    #[test]
    fn a_half_without_readings_is_not_proof() {
        let samples = [(1.0, 0), (2.0, 0)];
        let b = bounded(&samples, secs(30), slack(1000, 0));
        assert_eq!(b.second_half_min_events, None);
        assert!(!b.bounded);
    }

    #[test]
    fn the_first_stage_upstream_is_blamed() {
        let ok = Backlog {
            first_half_min_events: Some(0),
            second_half_min_events: Some(0),
            bounded: true,
        };
        let grew = Backlog {
            bounded: false,
            ..ok
        };
        assert_eq!(saturated(1000, 990.0, &ok, &ok, &ok), None);
        assert_eq!(
            saturated(1000, 900.0, &grew, &ok, &ok),
            Some(Stage::Generator)
        );
        assert_eq!(
            saturated(1000, 1000.0, &grew, &grew, &grew),
            Some(Stage::Debezium)
        );
        assert_eq!(
            saturated(1000, 1000.0, &ok, &grew, &grew),
            Some(Stage::KafkaToClickhouse)
        );
        assert_eq!(
            saturated(1000, 1000.0, &ok, &ok, &grew),
            Some(Stage::EndToEnd)
        );
    }
}
