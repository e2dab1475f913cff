//! The change-data-capture pipeline on a running stack, set up in an order that
//! leaves nothing to timing: PostgreSQL schema and publication, then the Kafka topics,
//! then ClickHouse's bronze/silver/gold (whose Kafka tables subscribe to those topics),
//! then the Debezium connector, and last a canary change that must reach silver.

use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clickhouse::{ChError, ClickHouse};
use crate::config::Config;
use crate::connect::{ConnectClient, ConnectError};
use crate::kafka::{self, KafkaError};
use crate::migrate::{self, MigrateError, Migration, PipelineFiles};
use crate::postgres::{self, PgError};
use crate::progress::Printer;
use crate::service::{Service, KAFKA_INTERNAL_PORT};
use crate::state::Credentials;

/// The PostgreSQL tables Debezium captures; each has a topic and bronze/silver tables.
pub const TABLES: [&str; 6] = [
    "raw_accounts",
    "raw_merchants",
    "raw_ip_geo",
    "raw_fx_rates",
    "raw_transactions",
    "findemo_canary",
];

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

/// The silver view holding each captured table's current rows.
pub const SILVER: [(&str, &str); 5] = [
    ("raw_accounts", "silver.accounts_current"),
    ("raw_merchants", "silver.merchants_current"),
    ("raw_ip_geo", "silver.ip_geo_current"),
    ("raw_fx_rates", "silver.fx_rates_current"),
    ("raw_transactions", "silver.transactions_current"),
];

/// What `up --dry-run` would do.
#[derive(Debug)]
pub struct Plan {
    pub postgres: Vec<String>,
    pub clickhouse: Vec<String>,
    pub connector: &'static str,
}

pub struct Pipeline<'a> {
    pub config: &'a Config,
    pub creds: &'a Credentials,
    pub files: &'a PipelineFiles,
    pub printer: &'a Printer,
}

/// The stack's Debezium connector.
pub fn connector_name(stack: &str) -> String {
    format!("{stack}-postgres-source")
}

/// The stack's replication slot (PostgreSQL allows no '-' in it).
pub fn slot_name(stack: &str) -> String {
    format!("{}_cdc", stack.replace('-', "_"))
}

impl Pipeline<'_> {
    pub fn connector_name(&self) -> String {
        connector_name(&self.config.stack)
    }

    pub fn slot_name(&self) -> String {
        slot_name(&self.config.stack)
    }

    pub fn topics(&self) -> Vec<String> {
        TABLES
            .iter()
            .map(|t| format!("{}.public.{t}", self.config.stack))
            .collect()
    }

    fn clickhouse(&self) -> ClickHouse {
        ClickHouse::new(self.config, self.creds)
    }

    fn connect(&self) -> ConnectClient {
        ConnectClient::new(self.config.service(Service::Connect).port)
    }

    /// The connector configuration: the file with the stack's values filled in.
    pub fn connector_config(&self) -> Result<Map<String, Value>, PipelineError> {
        let file = &self.files.connector;
        let slot = self.slot_name();
        let text = migrate::render(
            &file.path,
            &file.sql,
            &[
                ("postgres_user", self.creds.postgres_user.as_str()),
                ("topic_prefix", self.config.stack.as_str()),
                ("slot_name", slot.as_str()),
            ],
        )?;
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
        // 18.16 has no per-table flush setting; newer servers flush each second.
        let kafka_settings = if version.0 >= 21 {
            ",\n    kafka_flush_interval_ms = 1000".to_string()
        } else {
            String::new()
        };
        vec![
            ("kafka_broker", format!("kafka:{KAFKA_INTERNAL_PORT}")),
            ("topic_prefix", self.config.stack.clone()),
            ("group_prefix", format!("{}-clickhouse", self.config.stack)),
            ("kafka_settings", kafka_settings),
        ]
    }

    /// What applying would change, without changing anything.
    pub async fn plan(&self) -> Result<Plan, PipelineError> {
        let pg = postgres::connect(self.config, self.creds).await?;
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

        let mut pg = postgres::connect(self.config, self.creds).await?;
        for file in migrate::pending_in(&pg, &self.files.postgres).await? {
            let task = self
                .printer
                .task("postgres", &format!("applying {}", file.path));
            migrate::postgres::apply(&mut pg, file).await?;
            task.done(&format!("applied {}", file.path));
            changed = true;
        }

        let kafka_addr = format!("127.0.0.1:{}", self.config.service(Service::Kafka).port);
        let created =
            kafka::create_topics(&kafka_addr, &self.topics(), Duration::from_secs(30)).await?;
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
    /// ClickHouse consumers that got no partitions back after a restart (re-attached).
    pub async fn canary(&self, timeout: Duration) -> Result<Duration, PipelineError> {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let task = self
            .printer
            .task("canary", "writing a change to PostgreSQL");
        let mut pg = postgres::connect(self.config, self.creds).await?;
        let lsn = write_canary(&mut pg, &token)
            .await
            .map_err(postgres::query_err("write the canary row"))?;
        let written = Instant::now();
        task.message("waiting for it in ClickHouse silver");
        let ch = self.clickhouse();
        let query = format!(
            "SELECT count() FROM silver.canary WHERE id = 1 AND token = '{}'",
            crate::clickhouse::escape(&token)
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
                }
                Stall::ClickHouse => {
                    self.printer.line(format!(
                        "{:<11} the change left Debezium {}s ago but is not in bronze: \
                         re-attaching ClickHouse's Kafka tables (they resume at their \
                         committed offsets)",
                        "clickhouse",
                        UNCONSUMED.as_secs()
                    ));
                    reattach_kafka_tables(&ch).await?;
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
        let pg = postgres::connect(self.config, self.creds).await.ok();
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
        for (table, silver) in SILVER {
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
        }
    }

    /// Deletes the connector, then its replication slot (a stale slot keeps old
    /// offsets and WAL). Each step is skipped when its service is not there.
    pub async fn remove(&self) -> Result<(), PipelineError> {
        self.connect().delete(&self.connector_name()).await?;
        let pg = postgres::connect(self.config, self.creds).await?;
        let slot = self.slot_name();
        // The slot is in use (55006) until the connector's task has let go of it.
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
                Ok(_) => break,
                Err(e) if e.code().is_some_and(|c| c.code() == "55006") && attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(
                        postgres::query_err(format!("drop replication slot {slot}"))(e).into(),
                    )
                }
            }
        }
        pg.batch_execute("DROP PUBLICATION IF EXISTS findemo_cdc")
            .await
            .map_err(postgres::query_err("drop publication"))?;
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

/// The bronze tables that read Kafka, one per captured table.
fn kafka_tables() -> impl Iterator<Item = String> {
    TABLES.iter().map(|t| format!("bronze.{t}_queue"))
}

/// Detaches ClickHouse's Kafka tables, so their consumers leave their groups now
/// rather than when the broker times them out. They come back when ClickHouse
/// starts (a DETACH without PERMANENT keeps the table's definition).
pub async fn detach_kafka_tables(ch: &ClickHouse) -> Result<(), ChError> {
    for table in kafka_tables() {
        ch.exec(&format!("DETACH TABLE IF EXISTS {table}")).await?;
    }
    Ok(())
}

/// Detaches and attaches ClickHouse's Kafka tables: their consumers join their
/// groups afresh and resume at the committed offsets.
async fn reattach_kafka_tables(ch: &ClickHouse) -> Result<(), ChError> {
    detach_kafka_tables(ch).await?;
    for table in kafka_tables() {
        ch.exec(&format!("ATTACH TABLE {table}")).await?;
    }
    Ok(())
}

/// How long the canary waits while the replication slot stands still short of the
/// canary before the connector's task is restarted (again after as long, up to
/// [`RESTARTS`] times).
const STALL: Duration = Duration::from_secs(30);
const RESTARTS: u32 = 3;

/// How long silver may miss a change Debezium has confirmed before ClickHouse's
/// Kafka tables are re-attached (up to [`REATTACHES`] times). Longer than the
/// consumers' session timeout (10 s, set in ClickHouse's `<kafka>` config): by then
/// the broker has expired the members of a ClickHouse that stopped without leaving,
/// which still held the partitions. (tansu, the test bed's broker, does not hand them
/// on by itself; a fresh join gets them.)
const UNCONSUMED: Duration = Duration::from_secs(25);
const REATTACHES: u32 = 2;

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
    reattaches: u32,
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
            reattaches: 0,
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
            if self.reattaches < REATTACHES && at.elapsed() >= UNCONSUMED {
                self.reattaches += 1;
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
