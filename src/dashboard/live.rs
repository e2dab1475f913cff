//! The live figures: refreshers that read the overview (every second) and the
//! pipeline's state (every two seconds) into shared snapshots, and the event stream
//! that hands each new snapshot to every open page.
//!
//! The refreshers run once per server, whatever the number of pages, and only while at
//! least one page listens. What cannot be read is said in the snapshot (`error`, a
//! service marked down), and the last figures that could be read stay in it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::buckets::{to_f64, Buckets, CountIndex};
use super::App;
use crate::clients::clickhouse::{ChError, ClickHouse};
use crate::clients::connect::ConnectClient;
use crate::config::Config;
use crate::endpoints::Endpoints;
use crate::pipeline::{per_sec, TopicHealth};
use crate::probe::WaitFor;
use crate::service::Service;

const OVERVIEW_EVERY: Duration = Duration::from_secs(1);
const PIPELINE_EVERY: Duration = Duration::from_secs(2);
/// The live window of the overview's per-second and per-merchant figures.
const WINDOW_SECS: u32 = 900;

/// The refresher tasks; aborting them ends every event stream.
pub struct Refreshers(JoinSet<()>);

impl Refreshers {
    pub fn abort(mut self) {
        self.0.abort_all();
    }
}

/// Starts the refreshers; returns the receivers pages subscribe to.
pub fn start(config: &Config, endpoints: &Endpoints, ch: &ClickHouse) -> Live {
    let (overview_tx, overview_rx) = watch::channel(Arc::<str>::from(""));
    let (index_tx, index_rx) = watch::channel(Arc::new(CountIndex::default()));
    let overview_tx = Arc::new(overview_tx);
    let (pipeline_tx, pipeline_rx) = watch::channel(Arc::<str>::from(""));
    let (services_tx, services_rx) = watch::channel(Vec::<ServiceState>::new());
    let mut tasks = JoinSet::new();
    tasks.spawn(overview_loop(
        ch.clone(),
        services_rx,
        overview_tx.clone(),
        index_tx,
    ));
    tasks.spawn(pipeline_loop(
        config.clone(),
        endpoints.clone(),
        ch.clone(),
        services_tx,
        overview_tx,
        pipeline_tx,
    ));
    Live {
        overview: overview_rx,
        pipeline: pipeline_rx,
        index: index_rx,
        refreshers: Refreshers(tasks),
    }
}

/// What the refreshers publish.
pub struct Live {
    pub overview: watch::Receiver<Arc<str>>,
    pub pipeline: watch::Receiver<Arc<str>>,
    pub index: watch::Receiver<Arc<CountIndex>>,
    pub refreshers: Refreshers,
}

/// `GET /api/live`: the snapshots as server-sent events (`overview`, `pipeline`), the
/// current ones first.
pub async fn stream(
    State(app): State<Arc<App>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut overview = app.overview.clone();
    let mut pipeline = app.pipeline.clone();
    overview.mark_changed();
    pipeline.mark_changed();
    let events = futures_util::stream::unfold(
        (overview, pipeline),
        |(mut overview, mut pipeline)| async move {
            loop {
                let (name, data) = tokio::select! {
                    changed = overview.changed() => {
                        changed.ok()?;
                        ("overview", overview.borrow_and_update().clone())
                    }
                    changed = pipeline.changed() => {
                        changed.ok()?;
                        ("pipeline", pipeline.borrow_and_update().clone())
                    }
                };
                if !data.is_empty() {
                    let event = Event::default().event(name).data(&*data);
                    return Some((Ok(event), (overview, pipeline)));
                }
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// `GET /api/overview`: the newest overview snapshot (waits for the first).
pub async fn overview(State(app): State<Arc<App>>) -> Response {
    latest(app.overview.clone()).await
}

/// `GET /api/pipeline`: the newest pipeline snapshot (waits for the first).
pub async fn pipeline(State(app): State<Arc<App>>) -> Response {
    latest(app.pipeline.clone()).await
}

/// A snapshot's `at` (its first field), in unix seconds.
fn taken_at(data: &str) -> Option<f64> {
    let rest = data.strip_prefix(r#"{"at":"#)?;
    rest[..rest.find(',')?].parse().ok()
}

/// The newest snapshot; one taken more than two refreshes ago (no page was listening)
/// is waited for anew. Holding the receiver counts as a listener, so the refresher
/// runs meanwhile.
async fn latest(mut rx: watch::Receiver<Arc<str>>) -> Response {
    let fresh = |data: &Arc<str>| {
        taken_at(data).is_some_and(|at| now_secs() - at < PIPELINE_EVERY.as_secs_f64() + 1.0)
    };
    let wait = rx.wait_for(fresh);
    let data = match tokio::time::timeout(Duration::from_secs(30), wait).await {
        Ok(Ok(data)) => data.clone(),
        _ => Arc::from(r#"{"error":"no snapshot yet"}"#),
    };
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        data.to_string(),
    )
        .into_response()
}

pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Waits until a page listens to one of `txs` (a receiver besides the server's own).
async fn until_listened(txs: &[&watch::Sender<Arc<str>>]) {
    while txs.iter().all(|tx| tx.receiver_count() <= 1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------ overview ---

#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    name: &'static str,
    up: bool,
    detail: String,
}

#[derive(Debug, Default, Serialize)]
struct Overview {
    at: f64,
    error: Option<String>,
    services: Vec<ServiceState>,
    kpis: Option<Kpis>,
    /// (second, transactions), ascending.
    tps: Vec<(u32, u64)>,
    /// (minute, currency, EUR).
    volume: Vec<(u32, String, f64)>,
    status_mix: BTreeMap<String, u64>,
    top_merchants: Vec<TopMerchant>,
    fraud: Vec<Burst>,
    daily: Vec<DailyKpi>,
}

#[derive(Debug, Clone, Serialize)]
struct Kpis {
    transactions: u64,
    volume_eur: f64,
    avg_eur: f64,
    active_accounts: u64,
    failed_share: f64,
    tps_1m: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, clickhouse::Row)]
struct DailyKpi {
    day: String,
    transactions: u64,
    succeeded: u64,
    failed: u64,
    pending: u64,
    total_eur: f64,
    avg_amount_eur: f64,
    active_accounts: u64,
    active_merchants: u64,
}

#[derive(Debug, Serialize)]
struct TopMerchant {
    merchant_id: String,
    merchant_name: String,
    category: String,
    transactions: u64,
    total_eur: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, clickhouse::Row)]
struct Burst {
    account_id: String,
    transactions: u64,
    devices: u64,
    ips: u64,
    countries: u64,
    proxy_transactions: u64,
    max_eur: f64,
    last_seen: u32,
}

#[derive(Debug, Clone, serde::Deserialize, clickhouse::Row)]
struct MerchantName {
    merchant_id: String,
    merchant_name: String,
    category: String,
}

/// What the slow refresher reads: figures whose cost grows with the history (daily
/// KPIs, distinct accounts) or with the window's rows (bursts), read as often as they
/// take, apart from the per-second figures.
#[derive(Debug, Clone, Default)]
struct Slow {
    daily: Vec<DailyKpi>,
    fraud: Vec<Burst>,
    names: Vec<MerchantName>,
    error: Option<String>,
}

/// Accounts in the last `WINDOW_SECS` with a burst's shape: several transactions, each
/// from a new device (ordinary customers use one to three).
fn fraud_sql() -> String {
    format!(
        "SELECT account_id, count() AS transactions, uniqExact(device_id) AS devices, \
                uniqExact(ip) AS ips, uniqExact(ip_country) AS countries, \
                toUInt64(countIf(is_proxy_or_vpn = 1)) AS proxy_transactions, \
                toFloat64(max(amount_eur)) AS max_eur, toUInt32(max(ts)) AS last_seen \
         FROM (SELECT account_id, device_id, ip, ts, amount * rate_to_eur AS amount_eur FROM ( \
                   SELECT account_id, device_id, ip, ts, day, currency, amount \
                   FROM silver.transactions_by_time FINAL \
                   WHERE ts >= now() - {WINDOW_SECS} AND is_deleted = 0) AS w \
               ANY LEFT JOIN (SELECT date AS day, currency, rate_to_eur FROM silver.fx_rates FINAL \
                   WHERE is_deleted = 0) AS r USING (day, currency)) AS t \
         ANY LEFT JOIN (SELECT ip, country AS ip_country, is_proxy_or_vpn \
               FROM silver.ip_geo_current) AS g USING (ip) \
         GROUP BY account_id HAVING transactions >= 4 AND devices >= 4 \
         ORDER BY last_seen DESC, account_id LIMIT 10"
    )
}

const DAILY_SQL: &str = "\
    SELECT toString(day) AS day, transactions, succeeded, failed, pending, \
           toFloat64(total_eur) AS total_eur, avg_amount_eur, active_accounts, active_merchants \
    FROM gold.daily_kpis ORDER BY day DESC";

const NAMES_SQL: &str = "\
    SELECT merchant_id, merchant_name, merchant_category AS category FROM silver.merchants_current";

async fn read_slow(ch: &ClickHouse) -> Result<Slow, ChError> {
    Ok(Slow {
        daily: ch.fetch("daily KPIs", ch.query(DAILY_SQL)).await?,
        fraud: ch
            .fetch("fraud-like bursts", ch.query(&fraud_sql()))
            .await?,
        names: ch.fetch("merchant names", ch.query(NAMES_SQL)).await?,
        error: None,
    })
}

async fn slow_loop(
    ch: ClickHouse,
    listened: Arc<watch::Sender<Arc<str>>>,
    tx: watch::Sender<Slow>,
) {
    loop {
        until_listened(&[&listened]).await;
        let started = Instant::now();
        match read_slow(&ch).await {
            Ok(slow) => {
                tx.send_replace(slow);
            }
            Err(err) => tx.send_modify(|slow| slow.error = Some(err.to_string())),
        }
        tokio::time::sleep(OVERVIEW_EVERY.saturating_sub(started.elapsed())).await;
    }
}

/// The overview from the incremental buckets and the slow figures.
fn overview_of(buckets: &Buckets, slow: &Slow, now: u32) -> Overview {
    let window_from = now.saturating_sub(WINDOW_SECS);
    let totals = buckets.totals();
    let mut tps = Vec::new();
    let mut status_mix = BTreeMap::new();
    let mut volume: BTreeMap<(u32, String), i128> = BTreeMap::new();
    for (second, cells) in &buckets.seconds {
        let n: u64 = cells.iter().map(|c| c.n).sum();
        if *second >= window_from {
            tps.push((*second, n));
            for c in cells {
                *status_mix.entry(c.status.clone()).or_insert(0) += c.n;
            }
        }
        for c in cells {
            *volume
                .entry((second - second % 60, c.currency.clone()))
                .or_insert(0) += c.eur;
        }
    }
    let last_minute: u64 = tps
        .iter()
        .filter(|(s, _)| s + 60 > now)
        .map(|(_, n)| n)
        .sum();
    let mut merchants: BTreeMap<&str, (u64, i128)> = BTreeMap::new();
    for (_, cells) in buckets.merchants.range(window_from..) {
        for c in cells {
            let entry = merchants.entry(&c.merchant_id).or_insert((0, 0));
            entry.0 += c.n;
            entry.1 += c.eur;
        }
    }
    let mut top: Vec<(&str, (u64, i128))> = merchants.into_iter().collect();
    top.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let top_merchants = top
        .into_iter()
        .take(10)
        .map(|(id, (n, eur))| {
            let name = slow.names.iter().find(|m| m.merchant_id == id);
            TopMerchant {
                merchant_id: id.to_string(),
                merchant_name: name.map(|m| m.merchant_name.clone()).unwrap_or_default(),
                category: name.map(|m| m.category.clone()).unwrap_or_default(),
                transactions: n,
                total_eur: to_f64(eur),
            }
        })
        .collect();
    let ratio = |a: f64, b: u64| if b == 0 { 0.0 } else { a / b as f64 };
    Overview {
        kpis: Some(Kpis {
            transactions: totals.n,
            volume_eur: to_f64(totals.eur),
            avg_eur: ratio(to_f64(totals.eur), totals.n),
            active_accounts: slow.daily.first().map_or(0, |d| d.active_accounts),
            failed_share: ratio(totals.failed as f64, totals.n),
            tps_1m: last_minute as f64 / 60.0,
        }),
        tps,
        volume: volume
            .into_iter()
            .map(|((minute, currency), eur)| (minute, currency, to_f64(eur)))
            .collect(),
        status_mix,
        top_merchants,
        fraud: slow.fraud.clone(),
        daily: slow.daily.iter().take(14).cloned().collect(),
        ..Overview::default()
    }
}

async fn overview_loop(
    ch: ClickHouse,
    services: watch::Receiver<Vec<ServiceState>>,
    tx: Arc<watch::Sender<Arc<str>>>,
    index: watch::Sender<Arc<CountIndex>>,
) {
    let (slow_tx, slow_rx) = watch::channel(Slow::default());
    let slow_task = tokio::spawn(slow_loop(ch.clone(), tx.clone(), slow_tx));
    let mut buckets = Buckets::default();
    let mut last = Overview::default();
    let mut tick = tokio::time::interval(OVERVIEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Ends the slow refresher with this one (the server aborts this task).
    let _slow = AbortOnDrop(slow_task);
    loop {
        until_listened(&[&tx]).await;
        tick.tick().await;
        let now = now_secs() as u32;
        let error = buckets.refresh(&ch, now).await.err().map(|e| e.to_string());
        let slow = slow_rx.borrow().clone();
        // On an error the last figures stay, marked by it.
        if error.is_none() {
            last = overview_of(&buckets, &slow, now);
            index.send_replace(Arc::new(buckets.index(now)));
        }
        last.error = error.or(slow.error);
        last.at = now_secs();
        last.services = services.borrow().clone();
        match serde_json::to_string(&last) {
            Ok(json) => {
                tx.send_replace(Arc::from(json));
            }
            Err(err) => tracing::warn!("cannot encode the overview: {err}"),
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// ------------------------------------------------------------------ pipeline ---

#[derive(Debug, Serialize)]
struct PipelineView {
    at: f64,
    freshness_s: Option<f64>,
    stages: Vec<Stage>,
}

#[derive(Debug, Serialize)]
struct Stage {
    id: &'static str,
    name: &'static str,
    state: &'static str,
    detail: String,
    rate: Option<f64>,
    rate_unit: &'static str,
    figures: Vec<(String, String)>,
    trace: Option<String>,
    /// The Kafka stage only: per topic its end offset, events/s and ClickHouse's lag.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    topics: Vec<TopicHealth>,
}

impl Stage {
    fn new(id: &'static str, name: &'static str, rate_unit: &'static str) -> Stage {
        Stage {
            id,
            name,
            state: "down",
            detail: String::new(),
            rate: None,
            rate_unit,
            figures: Vec::new(),
            trace: None,
            topics: Vec::new(),
        }
    }
}

/// Counters whose change per second is a stage's rate.
#[derive(Debug, Default, Clone)]
struct Counters {
    source_changes: Option<i64>,
    bronze_events: Option<u64>,
    silver_versions: Option<u64>,
    /// Per topic, its end offset.
    topic_ends: BTreeMap<String, i64>,
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n} B"),
    }
}

async fn count(ch: &ClickHouse, sql: &str) -> Option<u64> {
    ch.exec(sql).await.ok()?.trim().parse().ok()
}

async fn pipeline_loop(
    config: Config,
    endpoints: Endpoints,
    ch: ClickHouse,
    services_tx: watch::Sender<Vec<ServiceState>>,
    overview_tx: Arc<watch::Sender<Arc<str>>>,
    tx: watch::Sender<Arc<str>>,
) {
    let connect = ConnectClient::new(&endpoints.connect);
    let connector = crate::pipeline::connector_name(&config.stack);
    let slot = crate::pipeline::slot_name(&config.stack);
    let mut before: Option<(Instant, Counters)> = None;
    let mut tick = tokio::time::interval(PIPELINE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The overview's service strip needs the probes too, so run while either listens.
        until_listened(&[&tx, &overview_tx]).await;
        tick.tick().await;

        let probes = Service::ALL.map(|service| {
            let wait = WaitFor::of(service, &endpoints);
            async move {
                let (up, detail) = match wait.probe().await {
                    Ok(detail) => (true, detail),
                    Err(reason) => (false, reason.to_string()),
                };
                ServiceState {
                    name: service.name(),
                    up,
                    detail,
                }
            }
        });
        let services = futures_util::future::join_all(probes).await;
        services_tx.send_replace(services.clone());
        let up = |name: &str| services.iter().any(|s| s.name == name && s.up);
        let detail = |name: &str| {
            services
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.detail.clone())
                .unwrap_or_default()
        };

        let mut counters = Counters::default();
        let mut postgres = Stage::new("postgres", "PostgreSQL", "changes/s");
        if up("postgres") {
            postgres.state = "ok";
            postgres.detail = detail("postgres");
            if let Ok(pg) = crate::clients::postgres::connect(&endpoints.postgres).await {
                if let Ok(row) = pg
                    .query_one(
                        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint, \
                                coalesce(sum(n_live_tup) FILTER (WHERE relname = 'raw_transactions'), 0)::bigint \
                         FROM pg_stat_user_tables WHERE relname LIKE 'raw\\_%'",
                        &[],
                    )
                    .await
                {
                    counters.source_changes = Some(row.get(0));
                    postgres
                        .figures
                        .push(("transactions (est.)".into(), grouped(row.get::<_, i64>(1).max(0) as u64)));
                }
                let slot_lag = pg
                    .query_opt(
                        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
                         FROM pg_replication_slots WHERE slot_name = $1",
                        &[&slot],
                    )
                    .await
                    .ok()
                    .flatten()
                    .and_then(|row| row.get::<_, Option<i64>>(0));
                match slot_lag {
                    Some(lag) => postgres.figures.push(("slot lag".into(), bytes(lag))),
                    None => postgres.figures.push(("slot".into(), "missing".into())),
                }
            }
        } else {
            postgres.detail = detail("postgres");
        }

        let mut debezium = Stage::new("connector", "Debezium connector", "");
        if up("connect") {
            match connect.status(&connector).await {
                Ok(Some(status)) => {
                    let running = status.connector.state == "RUNNING"
                        && !status.tasks.is_empty()
                        && status.tasks.iter().all(|t| t.state == "RUNNING");
                    debezium.state = if running { "ok" } else { "warn" };
                    debezium.detail = format!("connector {}", status.connector.state);
                    for (i, task) in status.tasks.iter().enumerate() {
                        debezium
                            .figures
                            .push((format!("task {i}"), task.state.clone()));
                        if task.trace.is_some() {
                            debezium.trace = task.trace.clone();
                        }
                    }
                    if status.connector.trace.is_some() {
                        debezium.trace = status.connector.trace.clone();
                    }
                }
                Ok(None) => {
                    debezium.state = "down";
                    debezium.detail =
                        format!("connector {connector} is not registered: run `findemo up`");
                }
                Err(err) => debezium.detail = err.to_string(),
            }
            debezium.figures.push(("name".into(), connector.clone()));
        } else {
            debezium.detail = format!("Kafka Connect: {}", detail("connect"));
        }

        let mut kafka = Stage::new("kafka", "Kafka", "events/s");
        kafka.state = if up("kafka") { "ok" } else { "down" };
        kafka.detail = detail("kafka");
        if up("kafka") {
            kafka.topics = crate::pipeline::consumer_lags(&config.stack, &endpoints.kafka).await;
            for topic in &kafka.topics {
                if let Some(end) = topic.end_offset {
                    counters.topic_ends.insert(topic.topic.clone(), end);
                }
            }
            if kafka.topics.iter().any(|t| t.error.is_some()) {
                kafka.state = "warn";
            }
            let lag: i64 = kafka.topics.iter().filter_map(|t| t.lag_events).sum();
            kafka.figures.push((
                "ClickHouse lag".into(),
                format!("{} events", grouped(lag as u64)),
            ));
        }

        let mut bronze = Stage::new("bronze", "ClickHouse bronze", "events/s");
        let mut silver = Stage::new("silver", "ClickHouse silver", "versions/s");
        let mut gold = Stage::new("gold", "ClickHouse gold", "");
        let mut freshness_s = None;
        if up("clickhouse") {
            counters.bronze_events =
                count(&ch, "SELECT count() FROM bronze.raw_transactions").await;
            counters.silver_versions =
                count(&ch, "SELECT count() FROM silver.transactions_by_time").await;
            for (stage, counted, label) in [
                (&mut bronze, counters.bronze_events, "transaction events"),
                (&mut silver, counters.silver_versions, "row versions"),
            ] {
                stage.state = if counted.is_some() { "ok" } else { "warn" };
                stage.detail = detail("clickhouse");
                if let Some(n) = counted {
                    stage.figures.push((label.into(), grouped(n)));
                }
            }
            freshness_s = ch
                .exec(
                    "SELECT if(count() = 0, '', toString(toUnixTimestamp(now()) * 1000 - max(source_ts_ms))) \
                     FROM silver.transactions_by_time WHERE ts >= now() - 3600",
                )
                .await
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
                .map(|ms| (ms / 1000.0).max(0.0));
            gold.state = "ok";
            gold.detail = "daily_kpis, merchant_metrics, account_fraud_features".into();
            if let Some(f) = freshness_s {
                gold.figures.push(("freshness".into(), format!("{f:.1} s")));
            }
        } else {
            for stage in [&mut bronze, &mut silver, &mut gold] {
                stage.detail = format!("ClickHouse: {}", detail("clickhouse"));
            }
        }

        let now = Instant::now();
        if let Some((then, old)) = before {
            let secs = now.duration_since(then).as_secs_f64();
            let f = |n: Option<i64>| n.map(|n| n as f64);
            for topic in &mut kafka.topics {
                let end = |c: &Counters| c.topic_ends.get(&topic.topic).copied();
                topic.events_per_sec = per_sec(f(end(&counters)), f(end(&old)), secs);
            }
            if !counters.topic_ends.is_empty() && counters.topic_ends.len() == old.topic_ends.len()
            {
                let sum = |c: &Counters| Some(c.topic_ends.values().sum::<i64>() as f64);
                kafka.rate = per_sec(sum(&counters), sum(&old), secs);
            }
            postgres.rate = per_sec(
                counters.source_changes.map(|n| n as f64),
                old.source_changes.map(|n| n as f64),
                secs,
            );
            bronze.rate = per_sec(
                counters.bronze_events.map(|n| n as f64),
                old.bronze_events.map(|n| n as f64),
                secs,
            );
            silver.rate = per_sec(
                counters.silver_versions.map(|n| n as f64),
                old.silver_versions.map(|n| n as f64),
                secs,
            );
        }
        before = Some((now, counters));

        let view = PipelineView {
            at: now_secs(),
            freshness_s,
            stages: vec![postgres, debezium, kafka, bronze, silver, gold],
        };
        match serde_json::to_string(&view) {
            Ok(json) => {
                tx.send_replace(Arc::from(json));
            }
            Err(err) => tracing::warn!("cannot encode the pipeline view: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_says_when_it_was_taken() {
        assert_eq!(
            taken_at(r#"{"at":1764291600.5,"error":null}"#),
            Some(1764291600.5)
        );
        assert_eq!(taken_at(""), None);
        assert_eq!(taken_at(r#"{"error":"no"}"#), None);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(999), "999");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(12_345), "12.3 kB");
    }
}
