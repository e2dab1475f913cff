//! `bench freshness`: how long a committed change takes to become visible in silver
//! while the generator writes at a given rate.
//!
//! Every 500 ms a probe is committed: one PostgreSQL transaction that gives one old,
//! settled transaction a no-op UPDATE (`SET status = status`: same values, a new
//! version in silver, nothing changes in gold) and the canary row (`findemo_canary`) a
//! fresh token. t0 is read on findemo's monotonic clock just after PostgreSQL
//! acknowledges the COMMIT. Every 10 ms findemo asks ClickHouse for that row's newest
//! version in `silver.transactions` (its primary key; a version is the change's WAL
//! position) and Kafka for the canary topic's end offset; the first answer that shows
//! the probe is its t1. Every figure is so a difference of two readings of one clock,
//! and two stages can be told apart: commit -> in Kafka (Debezium and Connect's
//! producer, read on the canary topic, whose event Debezium sends with the probe's
//! other change) and Kafka -> visible in silver (ClickHouse's Kafka engine). The probe
//! rides the transactions topic, as the generated load does: a probe timed on the
//! canary's own quiet topic would measure how ClickHouse batches a trickle instead.
//! Nothing finer can be told honestly; see [`NOT_MEASURED`].

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::{
    generator_plan, probe_token, topic_end, BenchError, BenchObserver, Summary, KAFKA_TIMEOUT,
};
use crate::clients::clickhouse::ClickHouse;
use crate::clients::kafka::TopicEnd;
use crate::clients::postgres;
use crate::config::Config;
use crate::endpoints::Endpoints;
use crate::generate::{Session, Stats};
use crate::progress::Printer;

/// Time between probes.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Time between polls of silver and of the topic.
pub const POLL_EVERY: Duration = Duration::from_millis(10);
/// How long the first probe may take to reach silver.
const WARM_UP: Duration = Duration::from_secs(120);
/// How long the generator may take to write a settled transaction to probe.
const FIRST_ROW: Duration = Duration::from_secs(60);
/// How long probes still outstanding after the run are waited for: more than
/// ClickHouse 18.16 takes to fill a block of 8,192 rows at 100 tx/s.
const DRAIN: Duration = Duration::from_secs(120);
/// How long polling may fail in a row before the run gives up.
const POLL_FAILING: Duration = Duration::from_secs(30);

/// What the breakdown cannot show, and why: said in the output rather than invented.
pub const NOT_MEASURED: &[&str] = &[
    "PostgreSQL commit -> Debezium: bronze's __source_ts_ms is Debezium's source time, \
     which for PostgreSQL is the transaction's commit time on PostgreSQL's clock, not \
     when Debezium read it; that wait is inside commit -> Kafka",
    "Kafka log append time: bronze keeps no Kafka timestamp (ClickHouse 18.16's Kafka \
     engine exposes none), so the topic is timed by polling its end offset instead",
    "ClickHouse ingest: bronze._ingested_at is whole seconds on ClickHouse's clock; \
     Kafka -> silver is timed by polling silver instead",
];

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct FreshnessReport {
    pub clock: &'static str,
    pub target_rate_per_sec: u32,
    pub achieved_rate_per_sec: f64,
    pub duration_secs: f64,
    pub probe_every_ms: u64,
    pub poll_every_ms: u64,
    pub probes_sent: usize,
    /// Probes never seen in silver within the drain time after the run.
    pub probes_missed: usize,
    /// Commit -> visible in silver (`count` probes).
    pub commit_to_silver: Option<Summary>,
    /// Commit -> the probe's event is in the canary topic.
    pub commit_to_kafka: Option<Summary>,
    /// The probe's event in the topic -> visible in silver.
    pub kafka_to_silver: Option<Summary>,
    pub not_measured: &'static [&'static str],
}

pub const CLOCK: &str = "findemo's monotonic clock: t0 just after PostgreSQL acknowledges \
     the probe's COMMIT, t1 when a poll shows the probe";

/// Probe rows are old transactions: the generator settles and deletes only recent ones.
const PROBE_ROW: &str = "SELECT transaction_id::text FROM raw_transactions \
     WHERE status <> 'pending' ORDER BY \"timestamp\" LIMIT 1";

/// One probe's readings of findemo's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The transaction it updated.
    pub row: String,
    /// The WAL position just before its changes: silver shows the probe once that
    /// row's newest version is at least this.
    pub lsn: i64,
    /// Committed (COMMIT acknowledged).
    pub committed: Instant,
    /// The topic's end offset that shows this probe's event.
    pub kafka_end: i64,
    pub in_kafka: Option<Instant>,
    pub in_silver: Option<Instant>,
}

/// Marks probes seen in silver at `at`, given each probed row's newest version
/// there. A row's changes travel in order (one key, one partition), so a version at
/// or past a probe's WAL position shows the probe (or a later change of the row).
pub fn mark_silver(probes: &mut [Probe], versions: &[(String, i64)], at: Instant) {
    for probe in probes.iter_mut().filter(|p| p.in_silver.is_none()) {
        let newest = versions.iter().find(|(row, _)| *row == probe.row);
        if newest.is_some_and(|(_, version)| *version >= probe.lsn) {
            probe.in_silver = Some(at);
        }
    }
}

/// Marks probes whose event the topic's end offset `end` shows, at `at`.
pub fn mark_kafka(probes: &mut [Probe], end: i64, at: Instant) {
    for probe in probes.iter_mut().filter(|p| p.kafka_end <= end) {
        probe.in_kafka.get_or_insert(at);
    }
}

/// The three summaries of a run's probes.
pub fn summarise(probes: &[Probe]) -> [Option<Summary>; 3] {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let total: Vec<f64> = probes
        .iter()
        .filter_map(|p| Some(ms(p.in_silver?.duration_since(p.committed))))
        .collect();
    let to_kafka: Vec<f64> = probes
        .iter()
        .filter_map(|p| Some(ms(p.in_kafka?.duration_since(p.committed))))
        .collect();
    // A probe seen in silver at the same poll as in Kafka (or, by the order rule,
    // before) spent no measurable time after Kafka.
    let after_kafka: Vec<f64> = probes
        .iter()
        .filter_map(|p| Some(ms(p.in_silver?.saturating_duration_since(p.in_kafka?))))
        .collect();
    [
        Summary::of(&total),
        Summary::of(&to_kafka),
        Summary::of(&after_kafka),
    ]
}

/// Generates at `rate` while probing for `duration`; see the module's comment.
pub async fn run(
    config: &Config,
    endpoints: &Endpoints,
    printer: &Printer,
    rate: u32,
    duration: Duration,
    seed: Option<u64>,
) -> Result<FreshnessReport, BenchError> {
    let task = printer.task("bench", "connecting, writing reference data");
    let mut plan = generator_plan(config, f64::from(rate), duration, seed)?;
    // The generator runs until the last probe is seen (or given up): every probe is
    // measured under load.
    plan.duration = None;
    let session = Session::open(&endpoints.postgres, plan).await?;
    let pg = postgres::connect(&endpoints.postgres).await?;
    let ch = ClickHouse::new(&endpoints.clickhouse);
    let topic = topic_end(config, &endpoints.kafka, "findemo_canary").await?;

    let stats = Stats::default();
    let observer = BenchObserver(printer);
    let (stop, stopped) = watch::channel(false);
    let generating = async {
        let outcome = session.run(&stats, &observer, stopped).await?;
        Ok::<_, BenchError>(outcome)
    };
    let measuring = async {
        let probes = measure(pg, &ch, &topic, duration, &stats, &task).await;
        let _ = stop.send(true);
        probes
    };
    let (outcome, probes) = tokio::try_join!(generating, measuring)?;

    let secs = outcome.elapsed.as_secs_f64();
    let achieved = if secs > 0.0 {
        ((outcome.next_seq - outcome.first_seq) as f64 / secs).round()
    } else {
        0.0
    };
    let [commit_to_silver, commit_to_kafka, kafka_to_silver] = summarise(&probes);
    let missed = probes.iter().filter(|p| p.in_silver.is_none()).count();
    task.done(&format!(
        "{} probes, {} seen in silver",
        probes.len(),
        probes.len() - missed
    ));
    Ok(FreshnessReport {
        clock: CLOCK,
        target_rate_per_sec: rate,
        achieved_rate_per_sec: achieved,
        duration_secs: duration.as_secs_f64(),
        probe_every_ms: PROBE_EVERY.as_millis() as u64,
        poll_every_ms: POLL_EVERY.as_millis() as u64,
        probes_sent: probes.len(),
        probes_missed: missed,
        commit_to_silver,
        commit_to_kafka,
        kafka_to_silver,
        not_measured: NOT_MEASURED,
    })
}

/// While the generator runs: finds a row to probe, sends a first probe through (the
/// pipeline flows, and every earlier canary change is in the topic, so its end offset
/// counts this run's probes from here), then probes for `duration`.
async fn measure(
    mut pg: tokio_postgres::Client,
    ch: &ClickHouse,
    topic: &TopicEnd,
    duration: Duration,
    stats: &Stats,
    task: &crate::progress::Task,
) -> Result<Vec<Probe>, BenchError> {
    task.message("waiting for a settled transaction to probe");
    let started = Instant::now();
    let row = loop {
        if let Some(row) = probe_row(&pg).await? {
            break row;
        }
        if started.elapsed() >= FIRST_ROW {
            return Err(BenchError::NoProbeRow(FIRST_ROW));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    task.message("a first probe");
    let (row, lsn) = write_probe(&mut pg, &row).await?;
    let started = Instant::now();
    loop {
        let versions = silver_versions(ch, std::slice::from_ref(&row)).await?;
        if versions.iter().any(|(_, v)| *v >= lsn) {
            break;
        }
        if started.elapsed() >= WARM_UP {
            return Err(BenchError::NoFlow(WARM_UP));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    let base = topic.end(KAFKA_TIMEOUT).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let probing = write_probes(pg, row, duration, base, tx);
    let watching = watch_probes(ch, topic, rx, stats, task);
    let ((), probes) = tokio::try_join!(probing, watching)?;
    Ok(probes)
}

/// The oldest settled transaction, if any.
async fn probe_row(pg: &tokio_postgres::Client) -> Result<Option<String>, BenchError> {
    let row = pg
        .query_opt(PROBE_ROW, &[])
        .await
        .map_err(pg_err("find a transaction to probe"))?;
    Ok(row.map(|r| r.get(0)))
}

fn pg_err(what: &'static str) -> impl Fn(tokio_postgres::Error) -> BenchError {
    move |e| BenchError::Query {
        what,
        reason: postgres::reason(&e),
    }
}

/// Commits one probe (see the module's comment) and returns the row it updated (`row`,
/// or another when the generator has deleted that one) and the WAL position just
/// before its changes.
async fn write_probe(
    pg: &mut tokio_postgres::Client,
    row: &str,
) -> Result<(String, i64), BenchError> {
    let mut row = row.to_string();
    for _ in 0..3 {
        let tx = pg
            .transaction()
            .await
            .map_err(pg_err("begin a probe transaction"))?;
        let lsn: i64 = tx
            .query_one(
                "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint",
                &[],
            )
            .await
            .map_err(pg_err("read the WAL position"))?
            .get(0);
        let updated = tx
            .execute(
                "UPDATE raw_transactions SET status = status WHERE transaction_id = $1::text::uuid",
                &[&row],
            )
            .await
            .map_err(pg_err("update the probed transaction"))?;
        if updated == 0 {
            // Deleted meanwhile: take the oldest settled transaction now.
            drop(tx);
            row = probe_row(pg)
                .await?
                .ok_or(BenchError::NoProbeRow(Duration::ZERO))?;
            continue;
        }
        tx.execute(
            "INSERT INTO findemo_canary (id, token) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token",
            &[&probe_token()],
        )
        .await
        .map_err(pg_err("write the canary row"))?;
        tx.commit().await.map_err(pg_err("commit a probe"))?;
        return Ok((row, lsn));
    }
    Err(BenchError::Query {
        what: "find a transaction to probe",
        reason: "each one found was deleted before it could be updated".into(),
    })
}

/// Commits a probe every [`PROBE_EVERY`] for `duration` and hands each to the watcher.
async fn write_probes(
    mut pg: tokio_postgres::Client,
    mut row: String,
    duration: Duration,
    base: i64,
    tx: mpsc::UnboundedSender<Probe>,
) -> Result<(), BenchError> {
    let end = Instant::now() + duration;
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0;
    loop {
        every.tick().await;
        if Instant::now() >= end {
            return Ok(());
        }
        let (probed, lsn) = write_probe(&mut pg, &row).await?;
        let committed = Instant::now();
        row = probed;
        sent += 1;
        let probe = Probe {
            row: row.clone(),
            lsn,
            committed,
            kafka_end: base + sent,
            in_kafka: None,
            in_silver: None,
        };
        if tx.send(probe).is_err() {
            return Ok(()); // The watcher gave up; its error says why.
        }
    }
}

/// Polls silver and the topic every [`POLL_EVERY`] until every probe is seen, or
/// [`DRAIN`] after the last one was written.
async fn watch_probes(
    ch: &ClickHouse,
    topic: &TopicEnd,
    mut rx: mpsc::UnboundedReceiver<Probe>,
    stats: &Stats,
    task: &crate::progress::Task,
) -> Result<Vec<Probe>, BenchError> {
    let mut probes: Vec<Probe> = Vec::new();
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut writing = true;
    let mut drain_until = None;
    let mut last_ok = Instant::now();
    let mut last_shown = Instant::now();
    let started = Instant::now();
    loop {
        tokio::select! {
            probe = rx.recv(), if writing => match probe {
                Some(probe) => probes.push(probe),
                None => {
                    writing = false;
                    drain_until = Some(Instant::now() + DRAIN);
                }
            },
            _ = poll.tick() => {
                let kafka_wanted = probes.iter().any(|p| p.in_kafka.is_none());
                let mut silver_wanted: Vec<String> = probes
                    .iter()
                    .filter(|p| p.in_silver.is_none())
                    .map(|p| p.row.clone())
                    .collect();
                silver_wanted.dedup();
                if !kafka_wanted && silver_wanted.is_empty() {
                    if !writing {
                        return Ok(probes);
                    }
                    continue;
                }
                let kafka = async {
                    if !kafka_wanted {
                        return None;
                    }
                    Some((topic.end(KAFKA_TIMEOUT).await, Instant::now()))
                };
                let silver = async {
                    if silver_wanted.is_empty() {
                        return None;
                    }
                    Some((silver_versions(ch, &silver_wanted).await, Instant::now()))
                };
                let (kafka, silver) = tokio::join!(kafka, silver);
                let mut failure = None;
                if let Some((end, at)) = kafka {
                    match end {
                        Ok(end) => mark_kafka(&mut probes, end, at),
                        Err(e) => failure = Some(e.to_string()),
                    }
                }
                if let Some((seen, at)) = silver {
                    match seen {
                        Ok(seen) => mark_silver(&mut probes, &seen, at),
                        Err(e) => failure = Some(e.to_string()),
                    }
                }
                match failure {
                    None => last_ok = Instant::now(),
                    Some(last) if last_ok.elapsed() >= POLL_FAILING => {
                        return Err(BenchError::Polling {
                            what: "polling ClickHouse and Kafka for probes",
                            secs: POLL_FAILING.as_secs(),
                            last,
                        });
                    }
                    Some(_) => {}
                }
                if drain_until.is_some_and(|d| Instant::now() >= d) {
                    return Ok(probes);
                }
                if last_shown.elapsed() >= Duration::from_secs(1) {
                    last_shown = Instant::now();
                    task.message(&progress_line(&probes, stats, started.elapsed(), writing));
                }
            }
        }
    }
}

fn progress_line(probes: &[Probe], stats: &Stats, elapsed: Duration, writing: bool) -> String {
    let seen = probes.iter().filter(|p| p.in_silver.is_some()).count();
    let last = probes
        .iter()
        .rev()
        .find_map(|p| Some(p.in_silver?.duration_since(p.committed)))
        .map_or("-".to_string(), |d| format!("{} ms", d.as_millis()));
    let rows = Stats::get(&stats.inserted);
    let rate = rows as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{}probes {} sent, {seen} in silver · last {last} · generator {}/s",
        if writing {
            ""
        } else {
            "waiting for the last probes · "
        },
        probes.len(),
        crate::progress::thousands(rate.round() as u64)
    )
}

/// The newest version in silver of each of `rows` that silver has.
async fn silver_versions(
    ch: &ClickHouse,
    rows: &[String],
) -> Result<Vec<(String, i64)>, BenchError> {
    // Rows are UUIDs PostgreSQL printed: safe to quote as they are.
    let list: Vec<String> = rows.iter().map(|r| format!("toUUID('{r}')")).collect();
    let text = ch
        .exec(&format!(
            "SELECT toString(transaction_id), max(version) FROM silver.transactions \
             WHERE transaction_id IN ({}) GROUP BY transaction_id",
            list.join(",")
        ))
        .await?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (row, version) = line.split_once('\t')?;
            Some((row.to_string(), version.trim().parse::<i64>().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(row: &str, t0: Instant, committed_ms: u64, lsn: i64) -> Probe {
        Probe {
            row: row.into(),
            lsn,
            committed: t0 + Duration::from_millis(committed_ms),
            kafka_end: lsn,
            in_kafka: None,
            in_silver: None,
        }
    }

    #[test]
    fn a_row_version_at_or_past_a_probe_shows_it() {
        let t0 = Instant::now();
        let mut probes = vec![
            probe("r1", t0, 0, 11),
            probe("r1", t0, 500, 12),
            probe("r1", t0, 1000, 13),
        ];
        let at = t0 + Duration::from_millis(1200);
        mark_silver(&mut probes, &[("r1".to_string(), 12)], at);
        assert_eq!(probes[0].in_silver, Some(at));
        assert_eq!(probes[1].in_silver, Some(at));
        assert_eq!(probes[2].in_silver, None);
        // A later sighting does not move an earlier t1.
        let later = at + Duration::from_millis(300);
        mark_silver(&mut probes, &[("r1".to_string(), 20)], later);
        assert_eq!(probes[0].in_silver, Some(at));
        assert_eq!(probes[2].in_silver, Some(later));
        // Another row's versions say nothing of this one.
        let mut other = vec![probe("r2", t0, 0, 5)];
        mark_silver(&mut other, &[("r1".to_string(), 99)], later);
        assert_eq!(other[0].in_silver, None);
        mark_silver(&mut other, &[], later);
        assert_eq!(other[0].in_silver, None);
    }

    #[test]
    fn the_topic_end_shows_probes_up_to_it() {
        let t0 = Instant::now();
        let mut probes = vec![probe("a", t0, 0, 11), probe("b", t0, 500, 12)];
        let at = t0 + Duration::from_millis(100);
        mark_kafka(&mut probes, 11, at);
        assert_eq!((probes[0].in_kafka, probes[1].in_kafka), (Some(at), None));
        mark_kafka(&mut probes, 12, at + Duration::from_millis(600));
        assert_eq!(probes[0].in_kafka, Some(at));
        assert!(probes[1].in_kafka.is_some());
    }

    #[test]
    fn stages_add_up_to_the_whole() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut a = probe("a", t0, 0, 1);
        a.in_kafka = Some(ms(300));
        a.in_silver = Some(ms(1000));
        let mut b = probe("b", t0, 500, 2);
        b.in_kafka = Some(ms(900));
        // Seen in silver by the order rule before its own Kafka reading: 0 after Kafka.
        b.in_silver = Some(ms(850));
        let missed = probe("c", t0, 1000, 3);
        let [total, kafka, after] = summarise(&[a, b, missed]);
        let total = total.unwrap();
        assert_eq!(
            (total.count, total.min_ms, total.max_ms),
            (2, 350.0, 1000.0)
        );
        assert_eq!(kafka.unwrap().max_ms, 400.0);
        let after = after.unwrap();
        assert_eq!((after.min_ms, after.max_ms), (0.0, 700.0));
    }
}
