//! Readiness: how findemo knows a service can do its job, asked at the protocol level
//! at the service's endpoint (an open port is not readiness).

use std::time::Duration;

use crate::clients::clickhouse::{escape, ChError, ClickHouse};
use crate::clients::connect::ConnectClient;
use crate::clients::{kafka, postgres};
use crate::endpoints::{ClickHouseEndpoint, ConnectEndpoint, Endpoints, KafkaEndpoint, PgEndpoint};
use crate::service::{Service, DEBEZIUM_POSTGRES_CLASS};

/// Why a probe failed: not ready yet (keep waiting), or refused for good (waiting
/// cannot help, e.g. wrong credentials).
#[derive(Debug, Clone, PartialEq)]
pub enum NotReady {
    Yet(String),
    Refused(String),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Yet(reason) | NotReady::Refused(reason) => f.write_str(reason),
        }
    }
}

impl From<String> for NotReady {
    fn from(reason: String) -> Self {
        NotReady::Yet(reason)
    }
}

/// One attempt may take this long before it counts as "not ready yet".
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// A wait strategy: what to ask a service, from the host.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// PostgreSQL accepts the stack's credentials and answers a query.
    Postgres(PgEndpoint),
    /// The Kafka broker answers a metadata request.
    KafkaMetadata(KafkaEndpoint),
    /// Kafka Connect's REST API answers and offers the Debezium PostgreSQL connector.
    ConnectPlugin(ConnectEndpoint),
    /// ClickHouse answers `/ping` and a query as the stack's user.
    ClickHouse(ClickHouseEndpoint),
}

impl WaitFor {
    /// How to tell that `service` at `endpoints` is ready for work.
    pub fn of(service: Service, endpoints: &Endpoints) -> WaitFor {
        match service {
            Service::Postgres => WaitFor::Postgres(endpoints.postgres.clone()),
            Service::Kafka => WaitFor::KafkaMetadata(endpoints.kafka.clone()),
            Service::Connect => WaitFor::ConnectPlugin(endpoints.connect.clone()),
            Service::Clickhouse => WaitFor::ClickHouse(endpoints.clickhouse.clone()),
        }
    }

    /// What is being waited for, in words.
    pub fn describe(&self) -> &'static str {
        match self {
            WaitFor::Postgres { .. } => "a SQL query",
            WaitFor::KafkaMetadata { .. } => "a metadata request",
            WaitFor::ConnectPlugin { .. } => "the Debezium PostgreSQL plugin over REST",
            WaitFor::ClickHouse { .. } => "/ping and a query",
        }
    }

    /// One attempt: `Ok(detail)` when ready, why not otherwise.
    pub async fn probe(&self) -> Result<String, NotReady> {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, self.probe_once()).await {
            Ok(result) => result,
            Err(_) => Err(NotReady::Yet(format!(
                "no answer within {ATTEMPT_TIMEOUT:?}"
            ))),
        }
    }

    async fn probe_once(&self) -> Result<String, NotReady> {
        match self {
            WaitFor::Postgres(ep) => {
                let client = postgres::open(ep, ATTEMPT_TIMEOUT).await.map_err(|e| {
                    // SQLSTATE class 28: the server is up and refuses these credentials
                    // (or this connection without TLS); a server without TLS refuses
                    // `sslmode: require` for good too.
                    let reason = postgres::reason(&e);
                    let refused = e.code().is_some_and(|c| c.code().starts_with("28"))
                        || reason.contains("does not support TLS");
                    match refused {
                        true => NotReady::Refused(reason),
                        false => NotReady::Yet(reason),
                    }
                })?;
                let row = client
                    .query_one("SELECT current_setting('server_version')", &[])
                    .await
                    .map_err(|e| NotReady::Yet(postgres::reason(&e)))?;
                let version: String = row.get(0);
                Ok(format!("PostgreSQL {version}"))
            }
            WaitFor::KafkaMetadata(ep) => {
                let brokers = kafka::metadata(ep, ATTEMPT_TIMEOUT)
                    .await
                    .map_err(|e| NotReady::Yet(e.to_string()))?;
                let names: Vec<String> = brokers
                    .iter()
                    .map(|b| format!("{}:{}", b.host, b.port))
                    .collect();
                Ok(format!("broker {}", names.join(", ")))
            }
            WaitFor::ConnectPlugin(ep) => {
                let plugins = ConnectClient::new(ep).plugins().await?;
                let class = DEBEZIUM_POSTGRES_CLASS;
                // Connect loads its plugins before its REST API answers: waiting for
                // one that is not listed cannot help.
                plugins
                    .iter()
                    .find(|(c, _)| c == class)
                    .map(|(c, version)| format!("{c} {version}"))
                    .ok_or_else(|| {
                        NotReady::Refused(format!(
                            "its workers do not offer the Debezium PostgreSQL connector ({class}); \
                             they list {}",
                            plugins
                                .iter()
                                .map(|(c, _)| c.rsplit('.').next().unwrap_or(c))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
            }
            WaitFor::ClickHouse(ep) => {
                let ch = ClickHouse::at(ep, ATTEMPT_TIMEOUT);
                let not_ready = |e: ChError| match e {
                    ChError::Refused { .. } => NotReady::Refused(e.to_string()),
                    ChError::Connect { reason, .. } => NotReady::Yet(reason),
                    other => NotReady::Yet(other.to_string()),
                };
                ch.ping().await.map_err(not_ready)?;
                let version = ch.exec("SELECT version()").await.map_err(not_ready)?;
                let mut detail = format!("ClickHouse {}", version.trim());
                if let Some(cluster) = ch.cluster() {
                    let servers = ch
                        .exec(&format!(
                            "SELECT count() FROM system.clusters WHERE cluster = '{}'",
                            escape(&cluster.name)
                        ))
                        .await
                        .map_err(not_ready)?;
                    detail += &format!(", cluster {} of {} servers", cluster.name, servers.trim());
                }
                Ok(detail)
            }
        }
    }
}
