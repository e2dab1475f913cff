//! Kafka Connect's REST API: the few calls findemo needs to register the Debezium
//! connector idempotently and watch it run.
//!
//! Connect answers 409 while its workers rebalance and 5xx while it starts; those are
//! retried with backoff. Anything else is reported as it came.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::endpoints::ConnectEndpoint;
use crate::retry::{Backoff, Limit};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Kafka Connect at {endpoint}: {what} failed after {attempts} attempts: {last}")]
    GaveUp {
        endpoint: String,
        what: String,
        attempts: u32,
        last: String,
    },
    #[error("Kafka Connect refused {what}: HTTP {status}: {message}")]
    Rejected {
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "connector {name}: {part} FAILED:\n{trace}\nFix the cause, then run `findemo up` again."
    )]
    Failed {
        name: String,
        part: String,
        trace: String,
    },
    #[error("connector {name} is not RUNNING after {}s (connector {connector}, tasks {tasks}).\nTry `findemo logs connect`.", waited.as_secs())]
    NotRunning {
        name: String,
        waited: Duration,
        connector: String,
        tasks: String,
    },
}

#[derive(Debug, Deserialize)]
pub struct Status {
    pub connector: State,
    #[serde(default)]
    pub tasks: Vec<State>,
}

#[derive(Debug, Deserialize)]
pub struct State {
    pub state: String,
    #[serde(default)]
    pub trace: Option<String>,
}

pub struct ConnectClient {
    http: reqwest::Client,
    base: String,
}

/// How often a transient answer is retried before giving up.
const ATTEMPTS: u32 = 12;

impl ConnectClient {
    pub fn new(ep: &ConnectEndpoint) -> ConnectClient {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some((user, password)) = &ep.auth {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            if let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Basic {token}"))
            {
                value.set_sensitive(true);
                headers.insert(reqwest::header::AUTHORIZATION, value);
            }
        }
        ConnectClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .default_headers(headers)
                .build()
                .unwrap_or_default(),
            base: ep.url.clone(),
        }
    }

    /// Sends a request, retrying transient failures; `None` on 404.
    async fn send(
        &self,
        what: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Option<Value>, ConnectError> {
        let mut backoff = Backoff::new(
            Limit::Attempts(ATTEMPTS),
            Duration::from_millis(250),
            Duration::from_secs(4),
        );
        loop {
            let last;
            match build().send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    match status {
                        200..=299 => {
                            return Ok(Some(serde_json::from_str(&text).unwrap_or(Value::Null)))
                        }
                        404 => return Ok(None),
                        409 | 500..=599 => last = format!("HTTP {status}: {}", message(&text)),
                        _ => {
                            return Err(ConnectError::Rejected {
                                what: what.to_string(),
                                status,
                                message: message(&text),
                            })
                        }
                    }
                }
                Err(err) => last = crate::clients::http_reason(err),
            }
            let attempt = backoff.failures() + 1;
            tracing::debug!(what, attempt, %last, "Kafka Connect not ready, retrying");
            if !backoff.wait().await {
                return Err(ConnectError::GaveUp {
                    endpoint: self.base.clone(),
                    what: what.to_string(),
                    attempts: ATTEMPTS,
                    last,
                });
            }
        }
    }

    /// The connector's configuration, if it exists (without its `name` key).
    pub async fn config(&self, name: &str) -> Result<Option<Map<String, Value>>, ConnectError> {
        let url = format!("{}/connectors/{name}/config", self.base);
        let value = self
            .send(&format!("GET config of {name}"), || self.http.get(&url))
            .await?;
        Ok(value.and_then(|v| match v {
            Value::Object(mut map) => {
                map.remove("name");
                Some(map)
            }
            _ => None,
        }))
    }

    /// Creates or updates the connector.
    pub async fn put_config(
        &self,
        name: &str,
        config: &Map<String, Value>,
    ) -> Result<(), ConnectError> {
        let url = format!("{}/connectors/{name}/config", self.base);
        self.send(&format!("PUT config of {name}"), || {
            self.http.put(&url).json(config)
        })
        .await?;
        Ok(())
    }

    pub async fn status(&self, name: &str) -> Result<Option<Status>, ConnectError> {
        let url = format!("{}/connectors/{name}/status", self.base);
        let value = self
            .send(&format!("GET status of {name}"), || self.http.get(&url))
            .await?;
        Ok(value.and_then(|v| serde_json::from_value(v).ok()))
    }

    /// Restarts the connector and every one of its tasks, whatever their state: a task
    /// can report RUNNING after its producer failed for good. Debezium resumes from the
    /// last position it committed, so changes after it are sent again, none skipped.
    pub async fn restart(&self, name: &str) -> Result<(), ConnectError> {
        let url = format!(
            "{}/connectors/{name}/restart?includeTasks=true&onlyFailed=false",
            self.base
        );
        self.send(&format!("restart {name}"), || self.http.post(&url))
            .await?;
        Ok(())
    }

    /// The connector plugins the workers offer, as (class, version), asked once (a
    /// readiness probe retries by itself): the reason in words when it fails.
    pub async fn plugins(&self) -> Result<Vec<(String, String)>, String> {
        #[derive(Deserialize)]
        struct Plugin {
            class: String,
            #[serde(default)]
            version: String,
        }
        let url = format!("{}/connector-plugins", self.base);
        let failed = |e| format!("GET {url}: {}", crate::clients::http_reason(e));
        let plugins: Vec<Plugin> = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)?;
        Ok(plugins.into_iter().map(|p| (p.class, p.version)).collect())
    }

    /// Stops the connector and its tasks, keeping its configuration (KIP-875).
    pub async fn stop(&self, name: &str) -> Result<(), ConnectError> {
        let url = format!("{}/connectors/{name}/stop", self.base);
        self.send(&format!("stop {name}"), || self.http.put(&url))
            .await?;
        Ok(())
    }

    /// Forgets the positions a stopped connector committed (KIP-875), so a connector
    /// registered again under its name starts afresh.
    pub async fn delete_offsets(&self, name: &str) -> Result<(), ConnectError> {
        let url = format!("{}/connectors/{name}/offsets", self.base);
        self.send(&format!("DELETE offsets of {name}"), || {
            self.http.delete(&url)
        })
        .await?;
        Ok(())
    }

    /// Deletes the connector; nothing to do if it does not exist.
    pub async fn delete(&self, name: &str) -> Result<(), ConnectError> {
        let url = format!("{}/connectors/{name}", self.base);
        self.send(&format!("DELETE {name}"), || self.http.delete(&url))
            .await?;
        Ok(())
    }

    /// Waits until the connector and all its tasks are RUNNING; a FAILED one is
    /// reported with its stack trace at once.
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> Result<(), ConnectError> {
        let mut backoff = Backoff::new(
            Limit::Until(timeout),
            Duration::from_millis(100),
            Duration::from_secs(1),
        );
        loop {
            let status = self.status(name).await?;
            let (connector, tasks) = match &status {
                Some(s) => (
                    s.connector.state.clone(),
                    s.tasks
                        .iter()
                        .map(|t| t.state.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                None => ("missing".to_string(), String::new()),
            };
            if let Some(s) = &status {
                if s.connector.state == "FAILED" {
                    return Err(failed(name, "connector", &s.connector));
                }
                if let Some((i, task)) = s
                    .tasks
                    .iter()
                    .enumerate()
                    .find(|(_, t)| t.state == "FAILED")
                {
                    return Err(failed(name, &format!("task {i}"), task));
                }
                if s.connector.state == "RUNNING"
                    && !s.tasks.is_empty()
                    && s.tasks.iter().all(|t| t.state == "RUNNING")
                {
                    return Ok(());
                }
            }
            if !backoff.wait().await {
                return Err(ConnectError::NotRunning {
                    name: name.to_string(),
                    waited: timeout,
                    connector,
                    tasks: if tasks.is_empty() {
                        "none".into()
                    } else {
                        tasks
                    },
                });
            }
        }
    }
}

fn failed(name: &str, part: &str, state: &State) -> ConnectError {
    ConnectError::Failed {
        name: name.to_string(),
        part: part.to_string(),
        trace: state
            .trace
            .as_deref()
            .unwrap_or("(no trace given)")
            .lines()
            .take(15)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Connect's error body is `{"error_code":..,"message":".."}`; fall back to the text.
fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| body.chars().take(300).collect())
}
