//! The thin clients of the four services, the only code that talks to them:
//! PostgreSQL, ClickHouse (HTTP), Kafka Connect (REST) and Kafka (rdkafka). Readiness
//! probes, commands and the dashboard all go through these.

pub mod clickhouse;
pub mod connect;
pub mod kafka;
pub mod postgres;
pub mod tls;

/// An HTTP client error with its causes ("error sending request" alone says little),
/// without the URL, which the caller names.
pub fn http_reason(err: reqwest::Error) -> String {
    use std::error::Error;
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}
