//! The external runtime's own work: services someone else runs. Before `up` changes
//! anything, [`preflight`] checks each endpoint can carry the pipeline (reachable,
//! credentials, logical WAL and replication rights, the Debezium plugin, topics and
//! ClickHouse databases findemo may own). What `up` creates there is recorded in the
//! state directory ([`Created`]), and `reset` removes exactly that and nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalogue::{clickhouse_group, topic_name, TABLES};
use crate::clients::clickhouse::ClickHouse;
use crate::clients::connect::ConnectClient;
use crate::clients::kafka::{self, Deletable};
use crate::clients::postgres;
use crate::endpoints::Endpoints;
use crate::pipeline::{connector_name, slot_name, PipelineError, PUBLICATION};
use crate::probe::{NotReady, WaitFor};
use crate::progress::Printer;
use crate::retry::{Backoff, Limit};
use crate::service::Service;

/// The ClickHouse databases findemo's SQL files create.
pub const CLICKHOUSE_DATABASES: [&str; 4] = ["bronze", "silver", "gold", "findemo_meta"];

/// How long `up` waits for an external service to answer: it should be running
/// already, so a short wait, for a service restarting.
const REACH_TIMEOUT: Duration = Duration::from_secs(15);
/// The pause between two attempts to reach a service.
const PAUSE: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error(
        "{service} at {address} does not answer: {reason}\n\
         Check that it runs, that this machine can reach {address} (host, port, firewall), \
         and services.{service} in demo.yaml."
    )]
    Unreachable {
        service: Service,
        address: String,
        reason: String,
    },
    #[error("{service} at {address} refuses findemo: {reason}\n{hint}")]
    Refused {
        service: Service,
        address: String,
        reason: String,
        hint: String,
    },
    #[error(
        "{service} at {address}: findemo does not trust its TLS certificate: {reason}\n{hint}"
    )]
    Untrusted {
        service: Service,
        address: String,
        reason: String,
        hint: String,
    },
    #[error("{0}\nNothing was changed.")]
    Unfit(String),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("cannot write {path}: {source}")]
    Record {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({source}); it lists what findemo created on the services")]
    Damaged {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What findemo created on external services, so that `reset` removes that and nothing
/// else. Kept in the state directory, written after every `up` (also a failed one).
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub connector: Option<String>,
    pub replication_slot: Option<String>,
    pub publication: Option<String>,
    pub postgres_tables: BTreeSet<String>,
    pub topics: BTreeSet<String>,
    pub consumer_groups: BTreeSet<String>,
    pub clickhouse_databases: BTreeSet<String>,
}

impl Created {
    pub fn is_empty(&self) -> bool {
        *self == Created::default()
    }

    /// One line per kind of object, for `reset`'s list.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut add = |what: &str, names: Vec<&String>| {
            if !names.is_empty() {
                lines.push(format!("{what}: {}", joined(&names)));
            }
        };
        add("Kafka Connect connector", self.connector.iter().collect());
        add(
            "PostgreSQL replication slot",
            self.replication_slot.iter().collect(),
        );
        add("PostgreSQL publication", self.publication.iter().collect());
        add("PostgreSQL tables", self.postgres_tables.iter().collect());
        add(
            "ClickHouse databases",
            self.clickhouse_databases.iter().collect(),
        );
        add("Kafka topics", self.topics.iter().collect());
        add(
            "Kafka consumer groups",
            self.consumer_groups.iter().collect(),
        );
        lines
    }
}

/// Names as a comma-separated list.
fn joined(names: &[&String]) -> String {
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a stack's record lives.
pub fn record_path(state_dir: &Path, stack: &str) -> PathBuf {
    state_dir.join(format!("{stack}.created.json"))
}

pub fn load(path: &Path) -> Result<Created, ExternalError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ExternalError::Damaged {
            path: path.to_path_buf(),
            source,
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Created::default()),
        Err(source) => Err(ExternalError::Record {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the record (or removes it when empty), replacing the old one at once.
pub fn save(path: &Path, created: &Created) -> Result<(), ExternalError> {
    let werr = |source| ExternalError::Record {
        path: path.to_path_buf(),
        source,
    };
    if created.is_empty() {
        return match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(werr(err)),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let json = serde_json::to_vec_pretty(created)
        .map_err(std::io::Error::other)
        .map_err(werr)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// The objects findemo may create that exist now, to tell by difference what an `up`
/// created. An error when any service cannot be asked: a list read as empty would make
/// someone else's objects look like findemo's.
pub async fn inventory(stack: &str, endpoints: &Endpoints) -> Result<Created, ExternalError> {
    let pg = postgres::connect(&endpoints.postgres)
        .await
        .map_err(PipelineError::from)?;
    let names = |sql: &'static str| {
        let pg = &pg;
        async move {
            pg.query(sql, &[])
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<BTreeSet<_>>()
                })
                .map_err(postgres::query_err("list what exists"))
                .map_err(PipelineError::from)
        }
    };
    let postgres_tables =
        names("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()").await?;
    let publication = names("SELECT pubname::text FROM pg_publication")
        .await?
        .take(PUBLICATION);
    let replication_slot = names("SELECT slot_name::text FROM pg_replication_slots")
        .await?
        .take(&slot_name(stack));
    let mut topics: Vec<String> = TABLES.iter().map(|t| topic_name(stack, t)).collect();
    topics.push(heartbeat_topic(stack));
    let topics = kafka::partition_counts(&endpoints.kafka, &topics, REACH_TIMEOUT)
        .await
        .map_err(PipelineError::from)?
        .into_iter()
        .filter(|(_, count)| count.is_some())
        .map(|(name, _)| name)
        .collect();
    let clickhouse_databases = ClickHouse::new(&endpoints.clickhouse)
        .exec("SELECT name FROM system.databases")
        .await
        .map_err(PipelineError::from)?
        .lines()
        .filter(|name| CLICKHOUSE_DATABASES.contains(name))
        .map(String::from)
        .collect();
    let name = connector_name(stack);
    let connector = ConnectClient::new(&endpoints.connect)
        .config(&name)
        .await
        .map_err(PipelineError::from)?
        .map(|_| name);
    Ok(Created {
        connector,
        replication_slot,
        publication,
        postgres_tables,
        topics,
        consumer_groups: BTreeSet::new(),
        clickhouse_databases,
    })
}

/// Every name findemo's files, connector and generator may create for `stack`:
/// recorded (less what exists already) before `up` changes anything, so an `up` cut
/// short leaves nothing unrecorded.
pub fn candidates(stack: &str) -> Created {
    let mut topics: BTreeSet<String> = TABLES.iter().map(|t| topic_name(stack, t)).collect();
    topics.insert(heartbeat_topic(stack));
    let mut tables: BTreeSet<String> = TABLES.iter().map(|t| t.to_string()).collect();
    tables.extend(["findemo_migrations", "findemo_generator_progress"].map(String::from));
    Created {
        connector: Some(connector_name(stack)),
        replication_slot: Some(slot_name(stack)),
        publication: Some(PUBLICATION.to_string()),
        postgres_tables: tables,
        topics,
        consumer_groups: BTreeSet::new(),
        clickhouse_databases: CLICKHOUSE_DATABASES.iter().map(|d| d.to_string()).collect(),
    }
}

/// The topic Debezium's heartbeats go to (created by Connect for findemo's connector).
fn heartbeat_topic(stack: &str) -> String {
    format!("__debezium-heartbeat.{stack}")
}

/// Adds to `record` what exists in `after` and did not in `before`, and the consumer
/// groups of findemo's Kafka tables once findemo created `bronze`.
pub fn merge(record: &mut Created, stack: &str, before: &Created, after: &Created) {
    fn new_in(before: &BTreeSet<String>, after: &BTreeSet<String>, into: &mut BTreeSet<String>) {
        into.extend(after.difference(before).cloned());
    }
    new_in(
        &before.postgres_tables,
        &after.postgres_tables,
        &mut record.postgres_tables,
    );
    new_in(&before.topics, &after.topics, &mut record.topics);
    new_in(
        &before.clickhouse_databases,
        &after.clickhouse_databases,
        &mut record.clickhouse_databases,
    );
    let single = |before: &Option<String>, after: &Option<String>, into: &mut Option<String>| {
        if before.is_none() && after.is_some() {
            *into = after.clone();
        }
    };
    single(&before.connector, &after.connector, &mut record.connector);
    single(
        &before.publication,
        &after.publication,
        &mut record.publication,
    );
    single(
        &before.replication_slot,
        &after.replication_slot,
        &mut record.replication_slot,
    );
    if record.clickhouse_databases.contains("bronze") {
        record
            .consumer_groups
            .extend(TABLES.iter().map(|t| clickhouse_group(stack, t)));
    }
}

/// Asks each service, until it answers or [`REACH_TIMEOUT`] passes; returns what
/// each said (a version), in [`Service::ALL`] order.
pub async fn reach(
    endpoints: &Endpoints,
    printer: &Printer,
) -> Result<Vec<(Service, String)>, ExternalError> {
    let checks = Service::ALL.map(|service| async move {
        let address = endpoints.address(service);
        let task = printer.task(service.name(), &format!("asking {address}"));
        let wait = WaitFor::of(service, endpoints);
        let mut backoff = Backoff::constant(Limit::Until(REACH_TIMEOUT), PAUSE);
        loop {
            let reason = match wait.probe().await {
                Ok(detail) => {
                    task.done(&format!("{address}: {detail}"));
                    return Ok((service, detail));
                }
                Err(NotReady::Refused(reason)) => {
                    task.failed("refused");
                    return Err(ExternalError::Refused {
                        service,
                        address,
                        hint: refused_hint(service, &reason),
                        reason,
                    });
                }
                // A certificate that does not check out will not change by waiting.
                Err(NotReady::Yet(reason)) if reason.contains("invalid peer certificate") => {
                    task.failed("certificate not trusted");
                    return Err(ExternalError::Untrusted {
                        service,
                        address,
                        hint: untrusted_hint(service),
                        reason,
                    });
                }
                Err(NotReady::Yet(reason)) => reason,
            };
            if !backoff.wait().await {
                task.failed("no answer");
                return Err(ExternalError::Unreachable {
                    service,
                    address,
                    reason: with_tls_hint(service, reason),
                });
            }
        }
    });
    futures_util::future::try_join_all(checks).await
}

fn refused_hint(service: Service, reason: &str) -> String {
    let lower = reason.to_ascii_lowercase();
    match service {
        Service::Postgres if lower.contains("ssl off") || lower.contains("no encryption") => {
            "The server accepts this user over TLS only: set services.postgres.sslmode to \
             require (or verify-full with ca_file)."
                .into()
        }
        Service::Postgres if lower.contains("does not support tls") => {
            "The server offers no TLS: set services.postgres.sslmode to disable, or enable \
             ssl on the server."
                .into()
        }
        Service::Postgres => "Check services.postgres.user and the password in the variable \
             (or file) services.postgres.password_env names."
            .into(),
        Service::Connect => "Install the Debezium PostgreSQL connector plugin on every Connect \
             worker (plugin.path) and restart them."
            .into(),
        Service::Clickhouse => "Check services.clickhouse.user and the password in the \
             variable (or file) services.clickhouse.password_env names."
            .into(),
        Service::Kafka => "Check services.kafka's user and password.".into(),
    }
}

fn untrusted_hint(service: Service) -> String {
    match service {
        Service::Postgres => "With sslmode: verify-full, the server's certificate must be \
             signed by a CA in services.postgres.ca_file (UnknownIssuer: it is not) and name \
             services.postgres.host (NotValidForName: it does not). sslmode: require encrypts \
             without checking."
            .into(),
        _ => "The CA that signed the server's certificate must be trusted by this machine: \
             add it to the system's CA store, or point SSL_CERT_FILE at a PEM file that holds \
             it."
        .into(),
    }
}

/// Adds what to try when a reason looks like a TLS mismatch.
fn with_tls_hint(service: Service, reason: String) -> String {
    let lower = reason.to_ascii_lowercase();
    let hint = match service {
        Service::Clickhouse | Service::Connect
            if lower.contains("invalid http version") || lower.contains("invalid content") =>
        {
            " (the port speaks another protocol: https:// to a plain HTTP port, or the reverse?)"
        }
        _ => "",
    };
    format!("{reason}{hint}")
}

/// Checks, before anything is changed, that the services can carry findemo's
/// pipeline and that no name it uses belongs to someone else.
pub async fn preflight(
    stack: &str,
    endpoints: &Endpoints,
    record: &Created,
) -> Result<(), ExternalError> {
    let pg = postgres::connect(&endpoints.postgres)
        .await
        .map_err(PipelineError::from)?;
    let row = pg
        .query_one(
            "SELECT current_setting('wal_level'), \
                    (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user), \
                    has_database_privilege(current_database(), 'CREATE'), \
                    has_schema_privilege(current_schema(), 'CREATE'), \
                    current_user::text, current_database()::text, current_schema()::text",
            &[],
        )
        .await
        .map_err(postgres::query_err("read wal_level and the user's rights"))
        .map_err(PipelineError::from)?;
    let (wal_level, replication, create_db, create_schema): (String, Option<bool>, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let (user, database, schema): (String, String, String) = (row.get(4), row.get(5), row.get(6));
    let mut unfit = Vec::new();
    if wal_level != "logical" {
        unfit.push(format!(
            "PostgreSQL has wal_level = {wal_level}; Debezium needs logical. Apply \
             `ALTER SYSTEM SET wal_level = logical;` and restart PostgreSQL (on a managed \
             service, its logical replication parameter)."
        ));
    }
    if replication != Some(true) {
        unfit.push(format!(
            "PostgreSQL user {user} may not replicate; Debezium needs it. Apply \
             `ALTER ROLE \"{user}\" WITH REPLICATION;` (on Amazon RDS: `GRANT rds_replication TO \"{user}\";`)."
        ));
    }
    if !create_db {
        unfit.push(format!(
            "PostgreSQL user {user} may not create publications in database {database}. Apply \
             `GRANT CREATE ON DATABASE \"{database}\" TO \"{user}\";`."
        ));
    }
    if !create_schema {
        unfit.push(format!(
            "PostgreSQL user {user} may not create tables in schema {schema}. Apply \
             `GRANT CREATE ON SCHEMA \"{schema}\" TO \"{user}\";`."
        ));
    }

    let found = inventory(stack, endpoints).await?;
    let ours = |name: &str| record.postgres_tables.contains(name);
    let theirs: Vec<&String> = found
        .postgres_tables
        .iter()
        .filter(|t| (t.starts_with("raw_") || t.starts_with("findemo_")) && !ours(t))
        .collect();
    if !theirs.is_empty() && !found.postgres_tables.contains("findemo_migrations") {
        unfit.push(format!(
            "PostgreSQL schema {schema} already has tables findemo would create, and no \
             findemo_migrations: {}. Use another database (services.postgres.database) or \
             remove them.",
            joined(&theirs)
        ));
    }

    let topics: Vec<String> = TABLES.iter().map(|t| topic_name(stack, t)).collect();
    let counts = kafka::partition_counts(&endpoints.kafka, &topics, REACH_TIMEOUT)
        .await
        .map_err(PipelineError::from)?;
    for (topic, count) in counts {
        if let Some(n) = count.filter(|&n| n != 1) {
            unfit.push(format!(
                "Kafka topic {topic} exists with {n} partitions; findemo's pipeline needs one \
                 partition per table to keep each row's changes in order. Delete the topic, \
                 or pick another stack name (it prefixes every topic)."
            ));
        }
    }

    let ch = ClickHouse::new(&endpoints.clickhouse);
    let layers: Vec<&String> = found
        .clickhouse_databases
        .iter()
        .filter(|d| d.as_str() != "findemo_meta" && !record.clickhouse_databases.contains(*d))
        .collect();
    if !layers.is_empty() && !found.clickhouse_databases.contains("findemo_meta") {
        unfit.push(format!(
            "ClickHouse already has databases findemo's layers use, not created by findemo: {}.",
            joined(&layers)
        ));
    }
    let cluster_unfit = match ch.cluster() {
        Some(cluster) => unfit_cluster(&ch, &cluster.name).await?,
        None => Vec::new(),
    };
    let missing = CLICKHOUSE_DATABASES
        .iter()
        .any(|d| !found.clickhouse_databases.contains(*d));
    if missing && cluster_unfit.is_empty() {
        // The one way to know on every server version: try, and undo.
        let probe = format!("findemo_rights_{}", stack.replace('-', "_"));
        match ch
            .ddl(&format!("CREATE DATABASE IF NOT EXISTS {probe}"))
            .await
        {
            Ok(_) => {
                let _ = ch.ddl(&format!("DROP DATABASE IF EXISTS {probe}")).await;
            }
            Err(err) => unfit.push(match ch.cluster() {
                Some(cluster) => format!(
                    "ClickHouse could not create a database on cluster {} ({err}). Every \
                     replica must be up, and user {} needs CREATE DATABASE, CREATE TABLE, \
                     CREATE VIEW, INSERT and SELECT on each.",
                    cluster.name, endpoints.clickhouse.user
                ),
                None => format!(
                    "ClickHouse user {} may not create databases ({err}). Grant it CREATE \
                     DATABASE, CREATE TABLE, CREATE VIEW, INSERT and SELECT (or use a user \
                     that has them).",
                    endpoints.clickhouse.user
                ),
            }),
        }
    }
    unfit.extend(cluster_unfit);
    if unfit.is_empty() {
        Ok(())
    } else {
        Err(ExternalError::Unfit(unfit.join("\n")))
    }
}

/// What keeps `cluster` from carrying findemo's layers: it must exist, have one shard
/// (each replica then holds every row, so any server answers the dashboard and
/// `verify`), name each server's shard and replica in its macros, and reach ZooKeeper.
async fn unfit_cluster(ch: &ClickHouse, cluster: &str) -> Result<Vec<String>, ExternalError> {
    #[derive(serde::Deserialize)]
    struct Cluster {
        cluster: String,
        shards: u32,
    }
    let clusters = ch
        .rows::<Cluster>(
            "SELECT cluster, toUInt32(uniqExact(shard_num)) AS shards \
             FROM system.clusters GROUP BY cluster ORDER BY cluster",
        )
        .await
        .map_err(PipelineError::from)?;
    let mut unfit = Vec::new();
    match clusters.iter().find(|c| c.cluster == cluster) {
        None => unfit.push(format!(
            "ClickHouse has no cluster {cluster} in its remote_servers (it has: {}). Set \
             services.clickhouse.cluster to one of them.",
            joined(&clusters.iter().map(|c| &c.cluster).collect::<Vec<_>>())
        )),
        Some(Cluster { shards: 1, .. }) => {}
        Some(Cluster { shards, .. }) => unfit.push(format!(
            "ClickHouse cluster {cluster} has {shards} shards; findemo's layers need a cluster \
             of one shard (any number of replicas), so that every server holds every row it \
             reads."
        )),
    }
    #[derive(serde::Deserialize)]
    struct Macro {
        r#macro: String,
    }
    let macros = ch
        .rows::<Macro>("SELECT macro FROM system.macros")
        .await
        .map_err(PipelineError::from)?;
    let lacking: Vec<&str> = ["shard", "replica"]
        .into_iter()
        .filter(|m| !macros.iter().any(|x| x.r#macro == *m))
        .collect();
    if !lacking.is_empty() {
        unfit.push(format!(
            "ClickHouse has no {} macro; Replicated tables are named by them. Give each \
             server <macros><shard>01</shard><replica>its host name</replica></macros>.",
            lacking.join(" or ")
        ));
    }
    if let Err(err) = ch
        .exec("SELECT count() FROM system.zookeeper WHERE path = '/'")
        .await
    {
        unfit.push(format!(
            "ClickHouse cannot read ZooKeeper ({err}); ON CLUSTER DDL and Replicated tables \
             need it (<zookeeper> in each server's configuration)."
        ));
    }
    Ok(unfit)
}

/// Removes what `record` lists, in an order that lets go of each dependency first, and
/// updates the record after each step so that a failure leaves the rest re-runnable.
pub async fn remove(
    record_path: &Path,
    record: &mut Created,
    endpoints: &Endpoints,
    printer: &Printer,
) -> Result<(), ExternalError> {
    let connect = ConnectClient::new(&endpoints.connect);
    if let Some(name) = record.connector.clone() {
        let task = printer.task("connector", &format!("removing {name}"));
        connect.stop(&name).await.map_err(PipelineError::from)?;
        // Its stored offsets would make a connector of the same name skip its snapshot.
        if let Err(err) = connect.delete_offsets(&name).await {
            tracing::debug!(%err, "deleting the connector's offsets");
        }
        connect.delete(&name).await.map_err(PipelineError::from)?;
        record.connector = None;
        save(record_path, record)?;
        task.done(&format!("connector {name} and its offsets removed"));
    }
    if record.replication_slot.is_some()
        || record.publication.is_some()
        || !record.postgres_tables.is_empty()
    {
        let pg = postgres::connect(&endpoints.postgres)
            .await
            .map_err(PipelineError::from)?;
        if let Some(slot) = record.replication_slot.clone() {
            crate::pipeline::drop_slot(&pg, &slot)
                .await
                .map_err(PipelineError::from)?;
            record.replication_slot = None;
            save(record_path, record)?;
            printer.line(format!(
                "{:<11} replication slot {slot} removed",
                "postgres"
            ));
        }
        if let Some(publication) = record.publication.clone() {
            pg.batch_execute(&format!("DROP PUBLICATION IF EXISTS \"{publication}\""))
                .await
                .map_err(postgres::query_err("drop publication"))
                .map_err(PipelineError::from)?;
            record.publication = None;
            save(record_path, record)?;
            printer.line(format!(
                "{:<11} publication {publication} removed",
                "postgres"
            ));
        }
    }
    let ch = ClickHouse::new(&endpoints.clickhouse);
    // Servers from 21 on drop an Atomic database's tables minutes later, and a
    // Replicated table's ZooKeeper path stays taken until then: an `up` right after
    // would find it so. SYNC drops them at once (18.16 has no SYNC, and needs none).
    let sync = match ch.cluster() {
        Some(_) if !record.clickhouse_databases.is_empty() => {
            let (major, _) = ch.version().await.map_err(PipelineError::from)?;
            if major >= 21 {
                " SYNC"
            } else {
                ""
            }
        }
        _ => "",
    };
    // The Kafka tables go before their topics, so no consumer is left reading.
    for database in ["bronze", "silver", "gold", "findemo_meta"] {
        if record.clickhouse_databases.remove(database) {
            ch.ddl(&format!("DROP DATABASE IF EXISTS {database}{sync}"))
                .await
                .map_err(PipelineError::from)?;
            save(record_path, record)?;
            printer.line(format!("{:<11} database {database} removed", "clickhouse"));
        }
    }
    for (kind, names) in [
        (Deletable::Topics, std::mem::take(&mut record.topics)),
        (
            Deletable::Groups,
            std::mem::take(&mut record.consumer_groups),
        ),
    ] {
        if names.is_empty() {
            continue;
        }
        let list: Vec<String> = names.iter().cloned().collect();
        let refused = kafka::delete(&endpoints.kafka, kind, &list, REACH_TIMEOUT)
            .await
            .map_err(PipelineError::from)?;
        let what = match kind {
            Deletable::Topics => "topics",
            Deletable::Groups => "consumer groups",
        };
        for (name, code) in &refused {
            printer.line(format!(
                "{:<11} {what}: {name} not removed: {code}",
                "kafka"
            ));
        }
        let kept: BTreeSet<String> = refused.into_iter().map(|(n, _)| n).collect();
        match kind {
            Deletable::Topics => record.topics = kept,
            Deletable::Groups => record.consumer_groups = kept,
        }
        save(record_path, record)?;
        printer.line(format!("{:<11} {} {what} removed", "kafka", names.len()));
    }
    if !record.postgres_tables.is_empty() {
        let pg = postgres::connect(&endpoints.postgres)
            .await
            .map_err(PipelineError::from)?;
        let list: Vec<String> = record
            .postgres_tables
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect();
        pg.batch_execute(&format!("DROP TABLE IF EXISTS {}", list.join(", ")))
            .await
            .map_err(postgres::query_err("drop findemo's tables"))
            .map_err(PipelineError::from)?;
        printer.line(format!(
            "{:<11} {} tables removed",
            "postgres",
            record.postgres_tables.len()
        ));
        record.postgres_tables.clear();
        save(record_path, record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_what_appeared_is_recorded() {
        let before = Created {
            postgres_tables: set(&["orders"]),
            clickhouse_databases: set(&["silver"]),
            publication: Some("findemo_cdc".into()),
            ..Created::default()
        };
        let after = Created {
            postgres_tables: set(&["orders", "raw_accounts"]),
            clickhouse_databases: set(&["silver", "bronze"]),
            publication: Some("findemo_cdc".into()),
            connector: Some("s-postgres-source".into()),
            ..Created::default()
        };
        let mut record = Created::default();
        merge(&mut record, "s", &before, &after);
        assert_eq!(record.postgres_tables, set(&["raw_accounts"]));
        assert_eq!(record.clickhouse_databases, set(&["bronze"]));
        assert_eq!(record.publication, None);
        assert_eq!(record.connector.as_deref(), Some("s-postgres-source"));
        assert!(record.consumer_groups.contains("s-clickhouse-raw_accounts"));
        // A later run where everything exists keeps what the first one recorded.
        merge(&mut record, "s", &after, &after);
        assert_eq!(record.postgres_tables, set(&["raw_accounts"]));
    }

    #[test]
    fn the_record_round_trips_and_an_empty_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = record_path(dir.path(), "s");
        assert!(load(&path).unwrap().is_empty());
        let record = Created {
            topics: set(&["s.public.raw_accounts"]),
            ..Created::default()
        };
        save(&path, &record).unwrap();
        assert_eq!(load(&path).unwrap(), record);
        assert_eq!(
            record.describe(),
            vec!["Kafka topics: s.public.raw_accounts"]
        );
        save(&path, &Created::default()).unwrap();
        assert!(!path.exists());
    }
}
