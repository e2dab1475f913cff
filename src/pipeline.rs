//! The change-data-capture pipeline on a running stack, set up in an order that
//! leaves nothing to timing: PostgreSQL schema and publication, then the Kafka topics,
//! then ClickHouse's bronze/silver/gold (whose Kafka tables subscribe to those topics),
//! then the Debezium connector, and last a canary change that must reach silver, after
//! which every ClickHouse consumer group is checked for a consumer left standing.
//! [`Pipeline`] sets it up from the SQL and connector files; [`Deployed`] needs no
//! files: the pipeline's health for `status` (states, counts, topics and their lag)
//! and its removal for `reset`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalogue::{self, clickhouse_group, topic_name, TABLES};
use crate::clients::clickhouse::{ChError, ClickHouse};
use crate::clients::connect::{ConnectClient, ConnectError};
use crate::clients::kafka::{self, KafkaError, TopicLag};
use crate::clients::postgres::{self, PgError};
use crate::config::Config;
use crate::endpoints::{Endpoints, KafkaEndpoint};
use crate::migrate::{self, MigrateError, Migration, PipelineFiles};
use crate::progress::Printer;
use crate::service::Service;
use crate::stack::{Stack, StackError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Postgres(#[from] PgError),
    #[error(transparent)]
    ClickHouse(#[from] ChError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Files(#[from] MigrateError),
    #[error("{path}: {reason}")]
    ConnectorFile { path: String, reason: String },
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Stack(#[from] Box<StackError>),
    #[error(
        "the canary change did not reach ClickHouse's silver layer within {}s.\n\
         The connector runs, so look at `findemo logs connect` and `findemo logs clickhouse`.",
        .0.as_secs()
    )]
    Canary(Duration),
}

/// How the pipeline is doing, for `status`. Each figure is `None` when its service
/// could not be asked.
#[derive(Debug, Serialize)]
pub struct Health {
    pub connector: String,
    /// The connector's state (RUNNING, PAUSED, FAILED...), or "not registered".
    pub state: String,
    pub tasks: Vec<String>,
    /// WAL bytes PostgreSQL keeps for Debezium that it has not confirmed yet.
    pub slot_lag_bytes: Option<i64>,
    /// Per captured table: rows in PostgreSQL, change events in bronze, rows in silver.
    pub tables: Vec<TableCounts>,
    /// Seconds since the newest source change now visible in silver (and so in gold).
    pub freshness_secs: Option<f64>,
    /// Inserts, updates and deletes PostgreSQL has counted on the captured tables
    /// (its statistics, updated about once a second): a counter, for rates.
    pub postgres_changes: Option<i64>,
    /// Per topic: its end, and the ClickHouse consumer group's position and lag.
    pub topics: Vec<TopicHealth>,
}

/// A topic and the ClickHouse consumer group reading it. Figures are `None` when the
/// broker could not be asked (`error` says why).
#[derive(Debug, Clone, Serialize)]
pub struct TopicHealth {
    pub table: &'static str,
    pub topic: String,
    pub group: String,
    /// Offset the next event will get: the events the topic has received.
    pub end_offset: Option<i64>,
    /// The group's committed offset (summed over partitions); `None` before its first
    /// commit or when unknown.
    pub committed_offset: Option<i64>,
    /// Events the group has yet to consume (never negative).
    pub lag_events: Option<i64>,
    /// Events per second arriving in the topic over the last interval (`status --watch`).
    pub events_per_sec: Option<f64>,
    pub error: Option<String>,
}

impl TopicHealth {
    fn of(table: &'static str, stack: &str, lag: Result<TopicLag, KafkaError>) -> TopicHealth {
        let mut health = TopicHealth {
            table,
            topic: topic_name(stack, table),
            group: clickhouse_group(stack, table),
            end_offset: None,
            committed_offset: None,
            lag_events: None,
            events_per_sec: None,
            error: None,
        };
        match lag {
            Ok(lag) => {
                health.end_offset = Some(lag.end_offset);
                health.committed_offset = lag.committed_offset;
                health.lag_events = Some(lag.lag_events);
            }
            Err(err) => health.error = Some(err.to_string()),
        }
        health
    }
}

/// How long one reading of a group's lag may take.
const LAG_TIMEOUT: Duration = Duration::from_secs(5);

/// Every ClickHouse consumer group's lag on its topic, in [`TABLES`] order, read
/// concurrently (each on its own blocking thread).
pub async fn consumer_lags(stack: &str, broker: &KafkaEndpoint) -> Vec<TopicHealth> {
    let reads = TABLES.map(|table| async move {
        let lag = kafka::group_lag(
            broker,
            &clickhouse_group(stack, table),
            &topic_name(stack, table),
            LAG_TIMEOUT,
        )
        .await;
        TopicHealth::of(table, stack, lag)
    });
    futures_util::future::join_all(reads).await
}

/// Change per second of a counter between two readings; `None` when either is
/// unknown. Never negative: a counter that went back (a restart) reads as 0.
pub fn per_sec(now: Option<f64>, before: Option<f64>, secs: f64) -> Option<f64> {
    match (now, before) {
        (Some(a), Some(b)) if secs > 0.0 => Some(((a - b) / secs).max(0.0)),
        _ => None,
    }
}

/// The sum of figures that are all known, else `None`.
pub fn total<T: std::iter::Sum<T>>(figures: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    figures.into_iter().sum()
}

#[derive(Debug, Serialize)]
pub struct TableCounts {
    pub table: &'static str,
    pub source: Option<i64>,
    pub bronze: Option<u64>,
    pub silver: Option<u64>,
}

impl Health {
    pub fn running(&self) -> bool {
        self.state == "RUNNING"
            && !self.tasks.is_empty()
            && self.tasks.iter().all(|t| t == "RUNNING")
    }
}

/// Inserts, updates and deletes counted by PostgreSQL's statistics on the captured
/// tables: cheap to read, current to about a second.
pub const POSTGRES_CHANGES: &str =
    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint \
     FROM pg_stat_user_tables WHERE relname LIKE 'raw\\_%'";

/// What `up --dry-run` would do.
#[derive(Debug)]
pub struct Plan {
    pub postgres: Vec<String>,
    pub clickhouse: Vec<String>,
    pub connector: &'static str,
}

pub struct Pipeline<'a> {
    pub config: &'a Config,
    pub endpoints: &'a Endpoints,
    pub files: &'a PipelineFiles,
    pub printer: &'a Printer,
    /// The containers, when findemo runs them: what lets it restart ClickHouse.
    pub stack: Option<&'a Stack<'a>>,
    /// Stalls undone so far (a connector task or ClickHouse restarted).
    pub repairs: Cell<u32>,
}

/// The publication `sql/postgres/` creates and the connector reads.
pub const PUBLICATION: &str = "findemo_cdc";

/// Drops a replication slot if it exists, waiting (up to 10 s) while the connector's
/// task lets go of it.
pub async fn drop_slot(pg: &tokio_postgres::Client, slot: &str) -> Result<(), PgError> {
    let mut attempts = 0;
    loop {
        let result = pg
            .execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = $1",
                &[&slot],
            )
            .await;
        match result {
            Ok(_) => return Ok(()),
            // The slot is in use (55006) until the task has let go of it.
            Err(e) if e.code().is_some_and(|c| c.code() == "55006") && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(postgres::query_err(format!("drop replication slot {slot}"))(e)),
        }
    }
}

/// The stack's Debezium connector.
pub fn connector_name(stack: &str) -> String {
    format!("{stack}-postgres-source")
}

/// The stack's replication slot (PostgreSQL allows no '-' in it).
pub fn slot_name(stack: &str) -> String {
    format!("{}_cdc", stack.replace('-', "_"))
}

/// The pipeline as it runs on a stack: what `status` reads and `reset` removes. Needs
/// no files, so a broken `pipeline.files` folder hides nothing.
pub struct Deployed<'a> {
    pub config: &'a Config,
    pub endpoints: &'a Endpoints,
}

impl Deployed<'_> {
    pub fn connector_name(&self) -> String {
        connector_name(&self.config.stack)
    }

    pub fn slot_name(&self) -> String {
        slot_name(&self.config.stack)
    }

    fn clickhouse(&self) -> ClickHouse {
        ClickHouse::new(&self.endpoints.clickhouse)
    }

    fn connect(&self) -> ConnectClient {
        ConnectClient::new(&self.endpoints.connect)
    }

    /// The connector's state, slot lag, row counts per layer and freshness. Nothing
    /// here fails: what cannot be asked is reported as unknown.
    pub async fn health(&self) -> Health {
        let name = self.connector_name();
        let (state, tasks) = match self.connect().status(&name).await {
            Ok(Some(status)) => (
                status.connector.state,
                status.tasks.into_iter().map(|t| t.state).collect(),
            ),
            Ok(None) => ("not registered".to_string(), Vec::new()),
            Err(err) => (format!("unknown ({err})"), Vec::new()),
        };
        let pg = postgres::connect(&self.endpoints.postgres).await.ok();
        let ch = self.clickhouse();
        let slot_lag_bytes = match &pg {
            Some(pg) => pg
                .query_opt(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint \
                     FROM pg_replication_slots WHERE slot_name = $1",
                    &[&self.slot_name()],
                )
                .await
                .ok()
                .flatten()
                .and_then(|row| row.get::<_, Option<i64>>(0)),
            None => None,
        };
        let mut tables = Vec::new();
        for (table, silver) in catalogue::silver_views() {
            let source = match &pg {
                Some(pg) => pg
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .ok()
                    .map(|row| row.get::<_, i64>(0)),
                None => None,
            };
            let count = |sql: String| {
                let ch = &ch;
                async move { ch.exec(&sql).await.ok()?.trim().parse::<u64>().ok() }
            };
            tables.push(TableCounts {
                table,
                source,
                bronze: count(format!("SELECT count() FROM bronze.{table}")).await,
                silver: count(format!("SELECT count() FROM {silver}")).await,
            });
        }
        let postgres_changes = match &pg {
            Some(pg) => pg
                .query_one(POSTGRES_CHANGES, &[])
                .await
                .ok()
                .map(|row| row.get::<_, i64>(0)),
            None => None,
        };
        let topics = consumer_lags(&self.config.stack, &self.endpoints.kafka).await;
        let freshness_secs = ch
            .exec(
                "SELECT if(count() = 0, '', toString(toUnixTimestamp(now()) * 1000 - max(source_ts_ms))) \
                 FROM silver.transactions",
            )
            .await
            .ok()
            .and_then(|text| text.trim().parse::<f64>().ok())
            .map(|ms| (ms / 1000.0).max(0.0));
        Health {
            connector: name,
            state,
            tasks,
            slot_lag_bytes,
            tables,
            freshness_secs,
            postgres_changes,
            topics,
        }
    }

    /// Deletes the connector, then its replication slot (a stale slot keeps old
    /// offsets and WAL). Each step is skipped when its service is not there.
    pub async fn remove(&self) -> Result<(), PipelineError> {
        self.connect().delete(&self.connector_name()).await?;
        let pg = postgres::connect(&self.endpoints.postgres).await?;
        drop_slot(&pg, &self.slot_name()).await?;
        pg.batch_execute(&format!("DROP PUBLICATION IF EXISTS {PUBLICATION}"))
            .await
            .map_err(postgres::query_err("drop publication"))?;
        Ok(())
    }
}

impl Pipeline<'_> {
    fn deployed(&self) -> Deployed<'_> {
        Deployed {
            config: self.config,
            endpoints: self.endpoints,
        }
    }

    pub fn connector_name(&self) -> String {
        self.deployed().connector_name()
    }

    pub fn slot_name(&self) -> String {
        self.deployed().slot_name()
    }

    pub fn topics(&self) -> Vec<String> {
        TABLES
            .iter()
            .map(|t| topic_name(&self.config.stack, t))
            .collect()
    }

    fn clickhouse(&self) -> ClickHouse {
        self.deployed().clickhouse()
    }

    fn connect(&self) -> ConnectClient {
        self.deployed().connect()
    }

    /// The connector configuration: the file with the stack's values filled in.
    pub fn connector_config(&self) -> Result<Map<String, Value>, PipelineError> {
        let file = &self.files.connector;
        let slot = self.slot_name();
        let pg = &self.endpoints.postgres;
        // Values go into JSON strings: escaped as JSON, so any password fits.
        let vars = [
            ("postgres_host", pg.internal_host.clone()),
            ("postgres_port", pg.internal_port.to_string()),
            ("postgres_db", pg.database.clone()),
            ("postgres_user", pg.user.clone()),
            (
                "postgres_password",
                pg.connector_password.expose().to_string(),
            ),
            ("topic_prefix", self.config.stack.clone()),
            ("slot_name", slot),
            ("table_include_list", catalogue::include_list()),
        ]
        .map(|(k, v)| {
            let quoted = Value::String(v).to_string();
            (k, quoted[1..quoted.len() - 1].to_string())
        });
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let text = migrate::render(&file.path, &file.sql, &vars)?;
        let bad = |reason: String| PipelineError::ConnectorFile {
            path: file.path.clone(),
            reason,
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            bad(format!(
                "not valid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(bad("must be a JSON object of settings".into()));
        };
        if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
            return Err(bad(format!(
                "setting {key:?} must be a string, as Kafka Connect expects"
            )));
        }
        Ok(map)
    }

    /// Values for the ClickHouse files' placeholders; some depend on the server version.
    fn clickhouse_vars(&self, version: (u32, u32)) -> Vec<(&'static str, String)> {
        // Blocks of 1,024 rows: ClickHouse's Kafka engine ends a block only when it is
        // full (or the topic pauses), so at 5,144 tx/s the default 8,192 rows (test
        // bed) held a change 1.5 s; measured with `findemo bench freshness --rate 5144
        // --duration 60`: p95 commit -> silver 1,384 ms, against 1,794 ms with 8,192.
        // 18.16 flushes on the server's stream_flush_interval_ms (250 ms, set by
        // findemo's users.d file); newer servers take the interval per table.
        let mut kafka_settings = ",\n    kafka_max_block_size = 1024".to_string();
        if version.0 >= 21 {
            kafka_settings += ",\n    kafka_flush_interval_ms = 250";
        }
        vec![
            ("kafka_broker", self.endpoints.kafka.internal.clone()),
            ("topic_prefix", self.config.stack.clone()),
            ("group_prefix", format!("{}-clickhouse", self.config.stack)),
            ("kafka_settings", kafka_settings),
        ]
    }

    /// What applying would change, without changing anything.
    pub async fn plan(&self) -> Result<Plan, PipelineError> {
        let pg = postgres::connect(&self.endpoints.postgres).await?;
        let postgres = migrate::pending_in(&pg, &self.files.postgres).await?;
        let clickhouse = migrate::pending_in(&self.clickhouse(), &self.files.clickhouse).await?;
        let desired = self.connector_config()?;
        let connector = match self.connect().config(&self.connector_name()).await? {
            None => "register",
            Some(current) if current == desired => "unchanged",
            Some(_) => "update",
        };
        let paths = |files: Vec<&Migration>| files.iter().map(|f| f.path.clone()).collect();
        Ok(Plan {
            postgres: paths(postgres),
            clickhouse: paths(clickhouse),
            connector,
        })
    }

    /// Brings the pipeline to the state the files describe. Returns whether anything
    /// changed.
    pub async fn apply(&self) -> Result<bool, PipelineError> {
        // Parse the connector file first: a broken file changes nothing.
        let desired = self.connector_config()?;
        let mut changed = false;

        let mut pg = postgres::connect(&self.endpoints.postgres).await?;
        for file in migrate::pending_in(&pg, &self.files.postgres).await? {
            let task = self
                .printer
                .task("postgres", &format!("applying {}", file.path));
            migrate::postgres::apply(&mut pg, file).await?;
            task.done(&format!("applied {}", file.path));
            changed = true;
        }

        let created = kafka::create_topics(
            &self.endpoints.kafka,
            &self.topics(),
            Duration::from_secs(30),
        )
        .await?;
        if !created.is_empty() {
            self.printer
                .line(format!("{:<11} created {} topics", "kafka", created.len()));
            changed = true;
        }

        let ch = self.clickhouse();
        let pending = migrate::pending_in(&ch, &self.files.clickhouse).await?;
        if !pending.is_empty() {
            let vars = self.clickhouse_vars(ch.version().await?);
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            for file in pending {
                let task = self
                    .printer
                    .task("clickhouse", &format!("applying {}", file.path));
                migrate::clickhouse::apply(&ch, file, &vars).await?;
                task.done(&format!("applied {}", file.path));
                changed = true;
            }
        }

        let connect = self.connect();
        let name = self.connector_name();
        let task = self.printer.task("connector", &format!("checking {name}"));
        let current = connect.config(&name).await?;
        if current.as_ref() != Some(&desired) {
            task.message(if current.is_none() {
                "registering"
            } else {
                "updating"
            });
            connect.put_config(&name, &desired).await?;
            changed = true;
        }
        task.message("waiting for connector and task to run");
        connect
            .wait_running(&name, self.config.ready_timeout)
            .await?;
        task.done(&format!("{name} RUNNING"));
        Ok(changed)
    }

    /// Writes a fresh token to the canary row and waits until silver shows it.
    /// Returns the end-to-end time. Two known stalls are undone on the way: a
    /// connector task that stopped while Connect calls it RUNNING (restarted), and
    /// ClickHouse consumers that got no partitions back after a restart (ClickHouse
    /// restarted, see [`Pipeline::restart_clickhouse`]).
    pub async fn canary(&self, timeout: Duration) -> Result<Duration, PipelineError> {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let task = self
            .printer
            .task("canary", "writing a change to PostgreSQL");
        let mut pg = postgres::connect(&self.endpoints.postgres).await?;
        let lsn = write_canary(&mut pg, &token)
            .await
            .map_err(postgres::query_err("write the canary row"))?;
        let written = Instant::now();
        task.message("waiting for it in ClickHouse silver");
        let ch = self.clickhouse();
        let query = format!(
            "SELECT count() FROM silver.canary WHERE id = 1 AND token = '{}'",
            crate::clients::clickhouse::escape(&token)
        );
        let connect = self.connect();
        let mut watch = CanaryWatch::new(self.slot_name(), lsn);
        let mut pause = Duration::from_millis(50);
        loop {
            match watch.check(&pg).await {
                Stall::None => {}
                Stall::Connector => {
                    self.printer.line(format!(
                        "{:<11} no change confirmed by Debezium for {}s: restarting the \
                         connector's task (it resumes from its last committed position)",
                        "connector",
                        STALL.as_secs()
                    ));
                    connect.restart(&self.connector_name()).await?;
                    self.repairs.set(self.repairs.get() + 1);
                }
                Stall::ClickHouse => {
                    self.restart_clickhouse(&format!(
                        "the change left Debezium {}s ago but is not in bronze",
                        UNCONSUMED.as_secs()
                    ))
                    .await?;
                }
            }
            if ch.exec(&query).await?.trim() != "0" {
                let took = written.elapsed();
                task.done(&format!(
                    "a change reached silver in {:.1}s",
                    took.as_secs_f64()
                ));
                return Ok(took);
            }
            if written.elapsed() >= timeout {
                return Err(PipelineError::Canary(timeout));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// After the canary: checks that every ClickHouse consumer group consumes. A group
    /// with a lag whose committed offset has not moved for [`UNCONSUMED`] is stuck
    /// (tansu can leave a consumer with no partition, README "Known limits of the
    /// test bed"): ClickHouse is restarted then, up to [`CLICKHOUSE_RESTARTS`] times.
    /// Returns at once when nothing lags, and as soon as every lagging group is seen
    /// moving (ClickHouse 18.16 commits at the end of each read), so it
    /// never waits for a backlog to drain.
    pub async fn consumers(&self) -> Result<Consumers, PipelineError> {
        let task = self
            .printer
            .task("consumers", "reading ClickHouse's consumer groups");
        let mut watches: Vec<GroupWatch> = Vec::new();
        let mut restarts = 0;
        loop {
            let lags = consumer_lags(&self.config.stack, &self.endpoints.kafka).await;
            if let Some(failed) = lags.iter().find(|t| t.error.is_some()) {
                let why = failed.error.clone().unwrap_or_default();
                task.done(&format!("lag unknown: {why}"));
                return Ok(Consumers::Unknown(why));
            }
            let now = Instant::now();
            if watches.len() != lags.len() {
                watches = lags.iter().map(|t| GroupWatch::new(t, now)).collect();
            }
            let states: Vec<GroupState> = watches
                .iter_mut()
                .zip(&lags)
                .map(|(watch, lag)| watch.judge(lag, now))
                .collect();
            let behind = || {
                lags.iter()
                    .zip(&states)
                    .filter(|(_, s)| **s != GroupState::CaughtUp)
                    .map(|(t, _)| (t.table, t.lag_events.unwrap_or(0)))
                    .collect::<Vec<_>>()
            };
            if states.iter().all(|s| *s == GroupState::CaughtUp) {
                task.done("every ClickHouse consumer group has caught up");
                return Ok(Consumers::CaughtUp);
            }
            if states
                .iter()
                .all(|s| matches!(s, GroupState::CaughtUp | GroupState::Moving))
            {
                let behind = behind();
                task.done(&describe_behind(&behind, "consuming"));
                return Ok(Consumers::Behind(behind));
            }
            if states.contains(&GroupState::Stuck) {
                if restarts >= CLICKHOUSE_RESTARTS || self.stack.is_none() {
                    let behind = behind();
                    task.failed(&describe_behind(&behind, "not consuming"));
                    return Ok(Consumers::Stuck(behind));
                }
                restarts += 1;
                let stuck: Vec<&str> = lags
                    .iter()
                    .zip(&states)
                    .filter(|(_, s)| **s == GroupState::Stuck)
                    .map(|(t, _)| t.table)
                    .collect();
                task.message("restarting ClickHouse");
                self.restart_clickhouse(&format!(
                    "its consumer of {} has not committed for {}s with events left",
                    stuck.join(", "),
                    UNCONSUMED.as_secs()
                ))
                .await?;
                watches.clear();
            }
            task.message("waiting for lagging consumer groups to commit");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Restarts ClickHouse, whose consumers are not consuming (`why`). The restart
    /// outwaits the broker's expiry of the old consumers, so every Kafka table joins
    /// its group afresh and resumes at its committed offset: a re-attach of the tables
    /// is no cure on ClickHouse 18.16, whose DETACH can hang inside librdkafka. On
    /// services findemo does not run, nothing is tried.
    async fn restart_clickhouse(&self, why: &str) -> Result<(), PipelineError> {
        let Some(stack) = self.stack else {
            return Ok(());
        };
        self.printer.line(format!(
            "{:<11} {why}: restarting ClickHouse (its consumers resume at their \
             committed offsets)",
            "clickhouse"
        ));
        stack.restart(Service::Clickhouse).await.map_err(Box::new)?;
        self.repairs.set(self.repairs.get() + 1);
        Ok(())
    }
}

/// Writes the canary token in a transaction and returns a WAL position inside it:
/// once the slot's confirmed position has reached it, Debezium has sent the change.
async fn write_canary(
    pg: &mut tokio_postgres::Client,
    token: &str,
) -> Result<String, tokio_postgres::Error> {
    let tx = pg.transaction().await?;
    tx.execute(
        "INSERT INTO findemo_canary (id, token) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token",
        &[&token],
    )
    .await?;
    let lsn: String = tx
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await?
        .get(0);
    tx.commit().await?;
    Ok(lsn)
}

/// How long the canary waits while the replication slot stands still short of the
/// canary before the connector's task is restarted (again after as long, up to
/// [`RESTARTS`] times).
const STALL: Duration = Duration::from_secs(30);
const RESTARTS: u32 = 3;

/// How long silver may miss a change Debezium has confirmed, or a consumer group
/// with events left may keep its committed offset, before ClickHouse is restarted
/// (up to [`CLICKHOUSE_RESTARTS`] times). ClickHouse 18.16 commits after each block
/// or its flush interval (250 ms), so a consuming group moves well within it.
const UNCONSUMED: Duration = Duration::from_secs(25);
const CLICKHOUSE_RESTARTS: u32 = 2;

/// What the canary's wait should undo.
#[derive(Debug, PartialEq)]
enum Stall {
    None,
    /// The slot stands still short of the canary: Debezium's task is stuck.
    Connector,
    /// Debezium sent the canary long ago, and silver still lacks it.
    ClickHouse,
}

/// Watches the slot's confirmed position while the canary waits.
struct CanaryWatch {
    slot: String,
    /// A WAL position inside the canary's transaction.
    lsn: String,
    last: Option<String>,
    since: Instant,
    confirmed_at: Option<Instant>,
    restarts: u32,
    clickhouse_restarts: u32,
}

impl CanaryWatch {
    fn new(slot: String, lsn: String) -> CanaryWatch {
        CanaryWatch {
            slot,
            lsn,
            last: None,
            since: Instant::now(),
            confirmed_at: None,
            restarts: 0,
            clickhouse_restarts: 0,
        }
    }

    async fn check(&mut self, pg: &tokio_postgres::Client) -> Stall {
        let row = pg
            .query_opt(
                "SELECT confirmed_flush_lsn::text, confirmed_flush_lsn >= $2::text::pg_lsn \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot, &self.lsn],
            )
            .await
            .ok()
            .flatten();
        let position = row.as_ref().and_then(|r| r.get::<_, Option<String>>(0));
        let confirmed = row
            .as_ref()
            .and_then(|r| r.get::<_, Option<bool>>(1))
            .unwrap_or(false);
        if confirmed {
            let at = *self.confirmed_at.get_or_insert_with(Instant::now);
            if self.clickhouse_restarts < CLICKHOUSE_RESTARTS && at.elapsed() >= UNCONSUMED {
                self.clickhouse_restarts += 1;
                self.confirmed_at = Some(Instant::now());
                return Stall::ClickHouse;
            }
            return Stall::None;
        }
        if position != self.last {
            self.last = position;
            self.since = Instant::now();
        }
        if self.restarts < RESTARTS && self.since.elapsed() >= STALL {
            self.restarts += 1;
            self.since = Instant::now();
            return Stall::Connector;
        }
        Stall::None
    }
}

/// What `up` found of ClickHouse's consumers after the canary.
#[derive(Debug, PartialEq)]
pub enum Consumers {
    /// No group has events left to consume.
    CaughtUp,
    /// These groups (table, events left) lag but consume.
    Behind(Vec<(&'static str, i64)>),
    /// These groups lag and stayed still after every restart of ClickHouse.
    Stuck(Vec<(&'static str, i64)>),
    /// The lag could not be read.
    Unknown(String),
}

impl Consumers {
    /// One line for `up`'s summary.
    pub fn summary(&self) -> String {
        match self {
            Consumers::CaughtUp => "ClickHouse's consumers have caught up with Kafka.".into(),
            Consumers::Behind(behind) => format!(
                "ClickHouse's consumers are behind Kafka and consuming: {}.",
                describe_behind(behind, "")
            ),
            Consumers::Stuck(behind) => format!(
                "ClickHouse's consumers are stuck behind Kafka: {} (README, known limits).",
                describe_behind(behind, "")
            ),
            Consumers::Unknown(why) => format!("ClickHouse's consumer lag is unknown: {why}."),
        }
    }
}

fn describe_behind(behind: &[(&str, i64)], doing: &str) -> String {
    let list: Vec<String> = behind
        .iter()
        .map(|(table, lag)| format!("{table} {lag} events behind"))
        .collect();
    let list = list.join(", ");
    if doing.is_empty() {
        list
    } else {
        format!("{list}, {doing}")
    }
}

/// What one reading says of a consumer group.
#[derive(Debug, Clone, Copy, PartialEq)]
enum GroupState {
    /// Nothing left to consume.
    CaughtUp,
    /// Events left, and the committed offset has moved since watching began.
    Moving,
    /// Events left, the committed offset still, not for long enough to tell.
    Waiting,
    /// Events left and the committed offset still for [`UNCONSUMED`].
    Stuck,
}

/// One group's committed offset over time, while `up` watches it.
struct GroupWatch {
    committed: Option<i64>,
    since: Instant,
    moved: bool,
}

impl GroupWatch {
    fn new(first: &TopicHealth, now: Instant) -> GroupWatch {
        GroupWatch {
            committed: first.committed_offset,
            since: now,
            moved: false,
        }
    }

    fn judge(&mut self, reading: &TopicHealth, now: Instant) -> GroupState {
        if reading.lag_events.unwrap_or(0) == 0 {
            return GroupState::CaughtUp;
        }
        if reading.committed_offset != self.committed {
            self.committed = reading.committed_offset;
            self.since = now;
            self.moved = true;
        }
        if self.moved {
            GroupState::Moving
        } else if now.duration_since(self.since) >= UNCONSUMED {
            GroupState::Stuck
        } else {
            GroupState::Waiting
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(committed: Option<i64>, lag: i64) -> TopicHealth {
        TopicHealth {
            table: "raw_transactions",
            topic: topic_name("s", "raw_transactions"),
            group: clickhouse_group("s", "raw_transactions"),
            end_offset: Some(committed.unwrap_or(0) + lag),
            committed_offset: committed,
            lag_events: Some(lag),
            events_per_sec: None,
            error: None,
        }
    }

    #[test]
    fn names_match_the_clickhouse_files() {
        assert_eq!(
            clickhouse_group("kaf", "raw_accounts"),
            "kaf-clickhouse-raw_accounts"
        );
        assert_eq!(topic_name("kaf", "raw_accounts"), "kaf.public.raw_accounts");
        let bronze = include_str!("../sql/clickhouse/0001_bronze.sql");
        assert!(bronze.contains("kafka_group_name = '{{group_prefix}}-raw_accounts'"));
    }

    #[test]
    fn a_group_without_lag_has_caught_up() {
        let t0 = Instant::now();
        let mut watch = GroupWatch::new(&reading(Some(10), 0), t0);
        assert_eq!(
            watch.judge(&reading(Some(10), 0), t0 + UNCONSUMED * 2),
            GroupState::CaughtUp
        );
    }

    #[test]
    fn a_lagging_group_is_stuck_only_when_still_for_long_enough() {
        let t0 = Instant::now();
        let mut watch = GroupWatch::new(&reading(Some(10), 5), t0);
        let secs = |s| t0 + Duration::from_secs(s);
        assert_eq!(
            watch.judge(&reading(Some(10), 5), secs(7)),
            GroupState::Waiting
        );
        assert_eq!(
            watch.judge(&reading(Some(10), 9), secs(24)),
            GroupState::Waiting
        );
        assert_eq!(
            watch.judge(&reading(Some(10), 9), secs(25)),
            GroupState::Stuck
        );
        // Never committed, events waiting: stuck as well.
        let mut never = GroupWatch::new(&reading(None, 3), t0);
        assert_eq!(never.judge(&reading(None, 3), secs(30)), GroupState::Stuck);
    }

    #[test]
    fn a_group_whose_offset_moves_is_consuming() {
        let t0 = Instant::now();
        let mut watch = GroupWatch::new(&reading(None, 50), t0);
        let later = t0 + Duration::from_secs(8);
        assert_eq!(
            watch.judge(&reading(Some(20), 30), later),
            GroupState::Moving
        );
        assert_eq!(
            watch.judge(&reading(Some(20), 30), later + UNCONSUMED),
            GroupState::Moving
        );
    }

    #[test]
    fn rates_over_an_interval() {
        assert_eq!(per_sec(Some(30.0), Some(10.0), 2.0), Some(10.0));
        assert_eq!(per_sec(Some(5.0), Some(10.0), 2.0), Some(0.0));
        assert_eq!(per_sec(Some(5.0), None, 2.0), None);
        assert_eq!(per_sec(Some(5.0), Some(1.0), 0.0), None);
        assert_eq!(total([Some(1i64), Some(2)]), Some(3));
        assert_eq!(total([Some(1i64), None]), None);
    }
}
