//! Readiness: how findemo knows a service can do its job, asked at the protocol level
//! through the published port (an open port is not readiness).

use std::time::Duration;

use crate::clients::{http_reason, kafka};

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
    Postgres {
        port: u16,
        user: String,
        password: String,
        dbname: String,
    },
    /// The Kafka broker answers a metadata request.
    KafkaMetadata { port: u16 },
    /// Kafka Connect's REST API answers and offers the connector class.
    ConnectPlugin { port: u16, class: String },
    /// ClickHouse answers `/ping` and a query as the stack's user.
    ClickHouse {
        port: u16,
        user: String,
        password: String,
    },
}

impl WaitFor {
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
            WaitFor::Postgres {
                port,
                user,
                password,
                dbname,
            } => {
                let mut pg = tokio_postgres::Config::new();
                pg.host("127.0.0.1")
                    .port(*port)
                    .user(user)
                    .password(password)
                    .dbname(dbname)
                    .connect_timeout(ATTEMPT_TIMEOUT);
                let (client, conn) = pg.connect(tokio_postgres::NoTls).await.map_err(|e| {
                    // SQLSTATE class 28: the server is up and refuses these credentials.
                    let refused = e.code().is_some_and(|c| c.code().starts_with("28"));
                    if refused {
                        NotReady::Refused(crate::clients::postgres::reason(&e))
                    } else {
                        NotReady::Yet(crate::clients::postgres::reason(&e))
                    }
                })?;
                let conn = tokio::spawn(conn);
                let row = client
                    .query_one("SELECT current_setting('server_version')", &[])
                    .await
                    .map_err(|e| crate::clients::postgres::reason(&e));
                drop(client);
                let _ = conn.await;
                let version: String = row.map_err(NotReady::Yet)?.get(0);
                Ok(format!("PostgreSQL {version}"))
            }
            WaitFor::KafkaMetadata { port } => {
                let brokers = kafka::metadata(&format!("127.0.0.1:{port}"), ATTEMPT_TIMEOUT)
                    .await
                    .map_err(|e| NotReady::Yet(e.to_string()))?;
                let names: Vec<String> = brokers
                    .iter()
                    .map(|b| format!("{}:{}", b.host, b.port))
                    .collect();
                Ok(format!("broker {}", names.join(", ")))
            }
            WaitFor::ConnectPlugin { port, class } => {
                let url = format!("http://127.0.0.1:{port}/connector-plugins");
                let plugins: Vec<serde_json::Value> = http()
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| format!("GET {url}: {}", http_reason(e)))?
                    .json()
                    .await
                    .map_err(|e| format!("GET {url}: {}", http_reason(e)))?;
                plugins
                    .iter()
                    .find(|p| p["class"] == class.as_str())
                    .map(|p| format!("{} {}", class, p["version"].as_str().unwrap_or("")))
                    .ok_or_else(|| {
                        NotReady::Yet(format!("REST API is up but does not list {class}"))
                    })
            }
            WaitFor::ClickHouse {
                port,
                user,
                password,
            } => {
                let base = format!("http://127.0.0.1:{port}");
                let ping = http()
                    .get(format!("{base}/ping"))
                    .send()
                    .await
                    .map_err(|e| format!("GET /ping: {}", http_reason(e)))?
                    .text()
                    .await
                    .unwrap_or_default();
                if ping.trim() != "Ok." {
                    return Err(NotReady::Yet(format!("/ping answered {:?}", ping.trim())));
                }
                let response = http()
                    .post(format!("{base}/"))
                    .header("X-ClickHouse-User", user)
                    .header("X-ClickHouse-Key", password)
                    .body("SELECT version()")
                    .send()
                    .await
                    .map_err(|e| format!("query: {}", http_reason(e)))?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN
                    || text.contains("Authentication failed")
                {
                    return Err(NotReady::Refused(format!(
                        "the stack's user was refused: {}",
                        crate::clients::clickhouse::first_line(&text)
                    )));
                }
                if !status.is_success() {
                    return Err(NotReady::Yet(format!(
                        "query answered {status}: {}",
                        crate::clients::clickhouse::first_line(&text)
                    )));
                }
                Ok(format!("ClickHouse {}", text.trim()))
            }
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .unwrap_or_default()
}
