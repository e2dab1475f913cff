//! The stack's ClickHouse over its HTTP interface: queries (plain text, typed rows
//! through the official `clickhouse` crate, and read-only JSON for the dashboard's SQL
//! pad). This and the migrator's ClickHouse side ([`crate::migrate::clickhouse`]),
//! which applies `sql/clickhouse/` through it, are the only code that talks to
//! ClickHouse.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::endpoints::{ClickHouseCluster, ClickHouseEndpoint};
use crate::migrate::MigrateError;

#[derive(Debug, thiserror::Error)]
pub enum ChError {
    #[error(
        "cannot reach ClickHouse at {endpoint}: {reason}\nIs the stack up? `findemo status` tells."
    )]
    Connect { endpoint: String, reason: String },
    #[error("ClickHouse: {what}: {message}")]
    Query { what: String, message: String },
    #[error("ClickHouse refused the stack's user: {message}")]
    Refused { message: String },
    #[error(
        "{path}:{line}: ClickHouse refused statement {number} ({statement}): {message}\n\
             {path} is not recorded as applied; statements before it are re-runnable and stay."
    )]
    Migration {
        path: String,
        line: usize,
        number: usize,
        statement: String,
        message: String,
    },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

/// How long a server waits for every replica to run an `ON CLUSTER` statement.
const DDL_TASK_TIMEOUT_SECS: &str = "30";

#[derive(Clone)]
pub struct ClickHouse {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
    /// Where DDL goes when it is not this one server.
    cluster: Option<ClickHouseCluster>,
    /// The official client for typed reads (RowBinary). Validation off: it asks for
    /// RowBinaryWithNamesAndTypes, which ClickHouse 18.16 lacks.
    typed: clickhouse::Client,
}

/// Limits of a read-only query ([`ClickHouse::read_only`]).
pub struct ReadOnlyLimits {
    pub max_rows: u64,
    pub max_execution_secs: u64,
}

/// A read-only query's result, as ClickHouse's `JSONCompact` output has it.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct JsonResult {
    pub meta: Vec<JsonColumn>,
    pub data: Vec<Vec<serde_json::Value>>,
    #[serde(default)]
    pub statistics: JsonStatistics,
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct JsonColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct JsonStatistics {
    pub elapsed: f64,
    pub rows_read: u64,
    pub bytes_read: u64,
}

impl ClickHouse {
    pub fn new(ep: &ClickHouseEndpoint) -> ClickHouse {
        ClickHouse::at(ep, Duration::from_secs(60))
    }

    /// ClickHouse's HTTP interface at `ep`; a request gives up after `timeout`.
    pub fn at(ep: &ClickHouseEndpoint, timeout: Duration) -> ClickHouse {
        let base = format!("{}/", ep.url);
        let password = ep.password.expose();
        ClickHouse {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            typed: clickhouse::Client::default()
                .with_url(&ep.url)
                .with_user(&ep.user)
                .with_password(password)
                .with_validation(false)
                // What the dashboard reads shows in system.query_log (bench/dashboard.sh).
                .with_setting("log_queries", "1"),
            base,
            user: ep.user.clone(),
            password: password.to_string(),
            cluster: ep.cluster.clone(),
        }
    }

    /// Whether the server answers `/ping` (no user needed): `Ok` when it does.
    pub async fn ping(&self) -> Result<(), ChError> {
        let connect = |reason| ChError::Connect {
            endpoint: self.base.clone(),
            reason,
        };
        let answer = self
            .http
            .get(format!("{}ping", self.base))
            .send()
            .await
            .map_err(|e| connect(crate::clients::http_reason(e)))?
            .text()
            .await
            .unwrap_or_default();
        match answer.trim() {
            "Ok." => Ok(()),
            other => Err(connect(format!("/ping answered {other:?}"))),
        }
    }

    /// A typed query: fill its `?` placeholders with `bind` (values are escaped
    /// client-side; 18.16 has no server-side parameters), then [`ClickHouse::fetch`].
    pub fn query(&self, sql: &str) -> clickhouse::query::Query {
        self.typed.query(sql)
    }

    /// Runs a typed query; `what` names it in errors.
    pub async fn fetch<T>(
        &self,
        what: &str,
        query: clickhouse::query::Query,
    ) -> Result<Vec<T>, ChError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let sql = tracing::enabled!(tracing::Level::DEBUG).then(|| query.sql_display().to_string());
        let started = std::time::Instant::now();
        let result = query.fetch_all::<T>().await;
        if let Some(sql) = sql {
            // FINDEMO_LOG=findemo::clickhouse=debug shows what the dashboard reads.
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            tracing::debug!(what, ms, rows = result.as_ref().map_or(0, Vec::len), %sql, "typed query");
        }
        result.map_err(|err| match err {
            clickhouse::error::Error::Network(e) => ChError::Connect {
                endpoint: self.base.clone(),
                reason: e.to_string(),
            },
            clickhouse::error::Error::BadResponse(text) => ChError::Query {
                what: what.to_string(),
                message: server_message(&text),
            },
            other => ChError::Query {
                what: what.to_string(),
                message: other.to_string(),
            },
        })
    }

    /// Runs `sql` as HTTP GET, which ClickHouse itself executes read-only (a write or
    /// DDL is refused by the server, whatever the text says), within `limits`. One row
    /// more than `max_rows` comes back when the result is longer, so the caller can
    /// tell it was cut.
    pub async fn read_only(
        &self,
        sql: &str,
        limits: &ReadOnlyLimits,
    ) -> Result<JsonResult, ChError> {
        let sql = sql.trim().trim_end_matches(';');
        // On its own line, so a trailing comment cannot swallow it.
        let query = format!("{sql}\nFORMAT JSONCompact");
        let max_rows = (limits.max_rows + 1).to_string();
        let max_secs = limits.max_execution_secs.to_string();
        let request = self.http.get(&self.base).query(&[
            ("query", query.as_str()),
            ("max_result_rows", max_rows.as_str()),
            ("result_overflow_mode", "break"),
            ("max_execution_time", max_secs.as_str()),
            // Buffer the whole answer, so an error found late is an HTTP error and
            // not a broken JSON document.
            ("wait_end_of_query", "1"),
        ]);
        let text = self.send(request, "query").await?;
        serde_json::from_str(&text).map_err(|e| ChError::Query {
            what: "query".into(),
            message: format!("unexpected answer ({e}): {}", first_line(&text)),
        })
    }

    /// Runs one statement; returns the response body.
    pub async fn exec(&self, sql: &str) -> Result<String, ChError> {
        let request = self.http.post(&self.base).body(sql.to_string());
        self.send(request, first_line(sql)).await
    }

    /// Runs a statement that may change the schema: as written on one server, `ON
    /// CLUSTER` with Replicated engines on a cluster ([`crate::migrate::cluster`]).
    pub async fn ddl(&self, sql: &str) -> Result<String, ChError> {
        let Some(cluster) = &self.cluster else {
            return self.exec(sql).await;
        };
        let sql = crate::migrate::cluster::on_cluster(sql, cluster);
        // A replica that is down makes the server wait for it: this long, well within
        // the request's own timeout, then it names the hosts that did not answer.
        let request = self
            .http
            .post(&self.base)
            .query(&[("distributed_ddl_task_timeout", DDL_TASK_TIMEOUT_SECS)])
            .body(sql.clone());
        self.send(request, first_line(&sql)).await
    }

    /// The cluster DDL goes to, if any.
    pub fn cluster(&self) -> Option<&ClickHouseCluster> {
        self.cluster.as_ref()
    }

    /// Sends `request` as the stack's user; the body, or ClickHouse's message naming
    /// `what` failed.
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<String, ChError> {
        let response = request
            .header("X-ClickHouse-User", &self.user)
            .header("X-ClickHouse-Key", &self.password)
            .send()
            .await
            .map_err(|e| ChError::Connect {
                endpoint: self.base.clone(),
                reason: crate::clients::http_reason(e),
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(text)
        } else if status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN
            || text.contains("Authentication failed")
        {
            Err(ChError::Refused {
                message: first_line(&text).to_string(),
            })
        } else {
            Err(ChError::Query {
                what: what.to_string(),
                message: server_message(&text),
            })
        }
    }

    /// Runs a query and parses each output row (JSONEachRow) as a `T`.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ChError> {
        let text = self.exec(&format!("{sql} FORMAT JSONEachRow")).await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|e| ChError::Query {
                    what: first_line(sql).to_string(),
                    message: format!("unexpected row {line}: {e}"),
                })
            })
            .collect()
    }

    /// The server's major and minor version.
    pub async fn version(&self) -> Result<(u32, u32), ChError> {
        let text = self.exec("SELECT version()").await?;
        let mut parts = text
            .trim()
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        Ok((parts.next().unwrap_or(0), parts.next().unwrap_or(0)))
    }
}

/// Escapes a value for a single-quoted ClickHouse string literal.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The first line of `text`, trimmed.
pub fn first_line(text: &str) -> &str {
    text.trim().lines().next().unwrap_or("")
}

/// ClickHouse's error text, without the stack trace and exception class noise.
fn server_message(body: &str) -> String {
    let line = first_line(body);
    let line = line.split(", e.what()").next().unwrap_or(line);
    line.replace("e.displayText() = ", "").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_trimmed() {
        let body = "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 8, e.what() = DB::Exception\n";
        assert_eq!(
            server_message(body),
            "Code: 62, DB::Exception: Syntax error: failed at position 8"
        );
        assert_eq!(escape("it's"), "it\\'s");
    }
}
