//! The four services of a stack and how each official image is configured.
//!
//! Everything findemo passes to a container is decided here, from the checked config
//! and the stack's credentials, as each image documents it (shared/IMAGES.md). The test
//! bed's images honour the same contract, so a test config only swaps image names.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::config::Config;
use crate::docker::{Labels, ServiceSpec};
use crate::state::Credentials;

/// Port the Kafka broker listens on inside the network (`kafka:29092`).
pub const KAFKA_INTERNAL_PORT: u16 = 29092;
/// Port of the broker's KRaft controller listener, inside the container.
pub const KAFKA_CONTROLLER_PORT: u16 = 29093;
/// The database the pipeline lives in.
pub const POSTGRES_DB: &str = "financial";
/// How long the broker waits for a ClickHouse Kafka consumer that stopped without
/// leaving its group before expiring it (librdkafka's default is 45 s).
pub const CLICKHOUSE_CONSUMER_SESSION: Duration = Duration::from_secs(10);

/// ClickHouse server settings findemo adds (valid on 18.16 and current releases):
/// new consumer groups start at the topic's beginning, and the consumers' session
/// timeout is [`CLICKHOUSE_CONSUMER_SESSION`].
fn clickhouse_kafka_xml() -> String {
    format!(
        "<yandex>\n  <kafka>\n    <auto_offset_reset>smallest</auto_offset_reset>\n    \
         <session_timeout_ms>{}</session_timeout_ms>\n  </kafka>\n</yandex>\n",
        CLICKHOUSE_CONSUMER_SESSION.as_millis()
    )
}

/// How often ClickHouse's Kafka tables hand what they read to their views: every
/// 250 ms instead of the default 7.5 s. ClickHouse 18.16's Kafka engine writes a read
/// to its views only when the flush interval ends it, so this is the wait a change
/// sees after Kafka. Measured with `findemo bench freshness --rate 5144 --duration 60`
/// on the test bed (with 1,024-row blocks and Debezium polling every 50 ms): p95
/// commit -> silver 1,384 ms, against 2,254 ms at 1 s. (Current releases take
/// `kafka_flush_interval_ms` from the table, see `Pipeline::clickhouse_vars`.)
const CLICKHOUSE_STREAM_XML: &str = "<yandex>\n  <profiles>\n    <default>\n      \
    <stream_flush_interval_ms>250</stream_flush_interval_ms>\n    </default>\n  \
    </profiles>\n</yandex>\n";
/// The Debezium connector class Kafka Connect must offer.
pub const DEBEZIUM_POSTGRES_CLASS: &str = "io.debezium.connector.postgresql.PostgresConnector";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Service {
    Postgres,
    Kafka,
    Connect,
    Clickhouse,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Service {
    /// Start order: Connect needs the broker, so it comes after Kafka.
    pub const ALL: [Service; 4] = [
        Service::Postgres,
        Service::Kafka,
        Service::Clickhouse,
        Service::Connect,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Postgres => "postgres",
            Service::Kafka => "kafka",
            Service::Connect => "connect",
            Service::Clickhouse => "clickhouse",
        }
    }

    pub fn default_image(self) -> &'static str {
        match self {
            Service::Postgres => "postgres:18.1",
            Service::Kafka => "apache/kafka:4.3.1",
            Service::Connect => "quay.io/debezium/connect:3.6.0.Final",
            Service::Clickhouse => "clickhouse/clickhouse-server:26.3.18.32",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Service::Postgres => 5432,
            Service::Kafka => 9092,
            Service::Connect => 8083,
            Service::Clickhouse => 8123,
        }
    }

    pub fn container_name(self, stack: &str) -> String {
        format!("{stack}-{}", self.name())
    }

    /// Something to try when the service does not become ready.
    pub fn hint(self) -> &'static str {
        match self {
            Service::Postgres => {
                "if the data volume was made with other credentials, `findemo reset --yes` starts clean"
            }
            Service::Kafka => "the broker needs about 1 GB of memory; check `findemo logs kafka`",
            Service::Connect => {
                "Kafka Connect needs the Debezium PostgreSQL plugin and a reachable broker at kafka:29092"
            }
            Service::Clickhouse => "check `findemo logs clickhouse` for configuration errors",
        }
    }

    /// The container findemo runs for this service.
    pub fn spec(self, config: &Config, creds: &Credentials) -> ServiceSpec {
        let svc = config.service(self);
        let stack = &config.stack;
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |k: &str, v: &str| {
            env.insert(k.to_string(), v.to_string());
        };
        let mut cmd = None;
        let mut volumes = Vec::new();
        let mut shm_size = None;
        let mut nofile = None;
        let mut files = Vec::new();
        let container_port;
        match self {
            Service::Postgres => {
                set("POSTGRES_USER", &creds.postgres_user);
                set("POSTGRES_PASSWORD", &creds.postgres_password);
                set("POSTGRES_DB", POSTGRES_DB);
                cmd = Some(
                    [
                        "postgres",
                        "-c",
                        "wal_level=logical",
                        "-c",
                        "max_wal_senders=10",
                        "-c",
                        "max_replication_slots=10",
                    ]
                    .map(String::from)
                    .to_vec(),
                );
                // PostgreSQL 18 images keep PGDATA below /var/lib/postgresql.
                volumes.push((
                    format!("{stack}-postgres-data"),
                    "/var/lib/postgresql".into(),
                ));
                shm_size = Some(128 << 20);
                container_port = 5432;
            }
            Service::Kafka => {
                // The host listener's port is the same inside and outside, because the
                // broker tells clients to come back to the advertised address.
                let hp = svc.port;
                set("KAFKA_NODE_ID", "1");
                set("KAFKA_PROCESS_ROLES", "broker,controller");
                set(
                    "KAFKA_LISTENERS",
                    &format!(
                        "PLAINTEXT://:{KAFKA_INTERNAL_PORT},CONTROLLER://:{KAFKA_CONTROLLER_PORT},PLAINTEXT_HOST://:{hp}"
                    ),
                );
                set(
                    "KAFKA_ADVERTISED_LISTENERS",
                    &format!(
                        "PLAINTEXT://kafka:{KAFKA_INTERNAL_PORT},PLAINTEXT_HOST://localhost:{hp}"
                    ),
                );
                set(
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
                );
                set("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER");
                set(
                    "KAFKA_CONTROLLER_QUORUM_VOTERS",
                    &format!("1@kafka:{KAFKA_CONTROLLER_PORT}"),
                );
                set("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT");
                set("CLUSTER_ID", &creds.kafka_cluster_id);
                set("KAFKA_LOG_DIRS", "/var/lib/kafka/data");
                set("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1");
                set("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1");
                set("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1");
                set("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0");
                set("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m");
                volumes.push((format!("{stack}-kafka-data"), "/var/lib/kafka/data".into()));
                container_port = hp;
            }
            Service::Connect => {
                set("BOOTSTRAP_SERVERS", &format!("kafka:{KAFKA_INTERNAL_PORT}"));
                set("GROUP_ID", &format!("{stack}-connect"));
                set("CONFIG_STORAGE_TOPIC", &format!("{stack}.connect.configs"));
                set("OFFSET_STORAGE_TOPIC", &format!("{stack}.connect.offsets"));
                set("STATUS_STORAGE_TOPIC", &format!("{stack}.connect.statuses"));
                set("CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR", "1");
                set("CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR", "1");
                set("CONNECT_STATUS_STORAGE_REPLICATION_FACTOR", "1");
                set(
                    "KEY_CONVERTER",
                    "org.apache.kafka.connect.json.JsonConverter",
                );
                set(
                    "VALUE_CONVERTER",
                    "org.apache.kafka.connect.json.JsonConverter",
                );
                set("CONNECT_KEY_CONVERTER_SCHEMAS_ENABLE", "false");
                set("CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE", "false");
                set("OFFSET_FLUSH_INTERVAL_MS", "5000");
                set("HEAP_OPTS", "-Xms128m -Xmx768m");
                // The connector reads the database password from the worker's
                // environment, so it never shows in the connector's REST config.
                set("CONNECT_CONFIG_PROVIDERS", "env");
                set(
                    "CONNECT_CONFIG_PROVIDERS_ENV_CLASS",
                    "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
                );
                set("FINDEMO_POSTGRES_PASSWORD", &creds.postgres_password);
                volumes.push((format!("{stack}-connect-data"), "/kafka/data".into()));
                container_port = 8083;
            }
            Service::Clickhouse => {
                set("CLICKHOUSE_USER", &creds.clickhouse_user);
                set("CLICKHOUSE_PASSWORD", &creds.clickhouse_password);
                set("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT", "1");
                volumes.push((
                    format!("{stack}-clickhouse-data"),
                    "/var/lib/clickhouse".into(),
                ));
                nofile = Some(open_files_limit(262_144));
                // New consumer groups start at the beginning of a topic, so the
                // snapshot Debezium writes before ClickHouse subscribes is not skipped.
                files.push((
                    "/etc/clickhouse-server/config.d/findemo-kafka.xml".to_string(),
                    clickhouse_kafka_xml(),
                ));
                files.push((
                    "/etc/clickhouse-server/users.d/findemo-stream.xml".to_string(),
                    CLICKHOUSE_STREAM_XML.to_string(),
                ));
                container_port = 8123;
            }
        }
        for (k, v) in &svc.env {
            env.insert(k.clone(), v.clone());
        }

        ServiceSpec {
            container: self.container_name(stack),
            alias: self.name().to_string(),
            network: network_name(stack),
            image: svc.image.clone(),
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            cmd,
            ports: vec![(svc.port, container_port)],
            volumes,
            memory: svc.memory,
            shm_size,
            nofile,
            files,
            labels: Labels::service(stack, self.name()),
        }
    }
}

/// `wanted`, or less when this machine's hard limit on open files is lower: the
/// engine cannot grant a container more than it has itself (read from our own limit,
/// which on one machine matches the engine's).
fn open_files_limit(wanted: i64) -> i64 {
    let hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(4)?.parse::<i64>().ok()
        });
    match hard {
        Some(hard) if hard < wanted => hard,
        _ => wanted,
    }
}

pub fn network_name(stack: &str) -> String {
    format!("{stack}-net")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::path::Path;

    fn config(yaml: &str) -> Config {
        Config::parse(yaml, Path::new("t.yaml"), &Overrides::default()).unwrap()
    }

    fn env_of(spec: &ServiceSpec, key: &str) -> Option<String> {
        spec.env
            .iter()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(String::from))
    }

    #[test]
    fn kafka_host_listener_matches_published_port() {
        let cfg = config("services:\n  kafka: {port: 19092}\n");
        let spec = Service::Kafka.spec(&cfg, &Credentials::generate());
        assert_eq!(spec.ports, vec![(19092, 19092)]);
        let adv = env_of(&spec, "KAFKA_ADVERTISED_LISTENERS").unwrap();
        assert!(adv.contains("PLAINTEXT_HOST://localhost:19092"), "{adv}");
        assert!(adv.contains("PLAINTEXT://kafka:29092"), "{adv}");
        assert_eq!(
            env_of(&spec, "KAFKA_LOG_DIRS").as_deref(),
            Some("/var/lib/kafka/data")
        );
    }

    #[test]
    fn credentials_reach_the_images_and_user_env_wins() {
        let cfg = config("services:\n  connect:\n    env: {HEAP_OPTS: -Xmx1g}\n");
        let creds = Credentials::generate();
        let pg = Service::Postgres.spec(&cfg, &creds);
        assert_eq!(
            env_of(&pg, "POSTGRES_PASSWORD"),
            Some(creds.postgres_password.clone())
        );
        assert!(pg
            .cmd
            .as_ref()
            .unwrap()
            .contains(&"wal_level=logical".to_string()));
        let ch = Service::Clickhouse.spec(&cfg, &creds);
        assert_eq!(
            env_of(&ch, "CLICKHOUSE_PASSWORD"),
            Some(creds.clickhouse_password.clone())
        );
        let connect = Service::Connect.spec(&cfg, &creds);
        assert_eq!(env_of(&connect, "HEAP_OPTS").as_deref(), Some("-Xmx1g"));
        assert!(env_of(&connect, "OFFSET_STORAGE_TOPIC").is_some());
        assert_eq!(connect.labels.0["io.findemo.stack"], "findemo");
    }
}
