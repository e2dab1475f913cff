//! The SQL pad: any query a user types, run by ClickHouse as a read-only request
//! (ClickHouse refuses writes and DDL itself; nothing here inspects the text), with a
//! time limit and a row cap, answered with columns, rows and ClickHouse's own
//! statistics.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, App};
use crate::clients::clickhouse::{ChError, JsonColumn, JsonStatistics, ReadOnlyLimits};

/// Rows shown at most; a longer result is cut and says so.
pub const MAX_ROWS: u64 = 10_000;
const MAX_EXECUTION_SECS: u64 = 30;

#[derive(Debug, Deserialize)]
pub struct Request {
    sql: String,
}

#[derive(Debug, Serialize)]
pub struct Answer {
    columns: Vec<JsonColumn>,
    rows: Vec<Vec<serde_json::Value>>,
    rows_returned: usize,
    truncated: bool,
    limit: u64,
    statistics: Statistics,
}

#[derive(Debug, Serialize)]
struct Statistics {
    elapsed_s: f64,
    rows_read: u64,
    bytes_read: u64,
}

impl From<JsonStatistics> for Statistics {
    fn from(s: JsonStatistics) -> Statistics {
        Statistics {
            elapsed_s: s.elapsed,
            rows_read: s.rows_read,
            bytes_read: s.bytes_read,
        }
    }
}

/// Where ClickHouse says a syntax error is ("failed at position 8").
fn error_position(message: &str) -> Option<usize> {
    let rest = message.split("position ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `POST /api/sql`.
pub async fn run(
    State(app): State<Arc<App>>,
    Json(request): Json<Request>,
) -> Result<Json<Answer>, ApiError> {
    if request.sql.trim().is_empty() {
        return Err(ApiError::bad_request("type a query first"));
    }
    let limits = ReadOnlyLimits {
        max_rows: MAX_ROWS,
        max_execution_secs: MAX_EXECUTION_SECS,
    };
    let result = match app.ch.read_only(&request.sql, &limits).await {
        Ok(result) => result,
        Err(ChError::Query { message, .. }) => {
            let mut err = ApiError::bad_request(message.clone());
            err.position = error_position(&message);
            return Err(err);
        }
        Err(other) => return Err(other.into()),
    };
    let mut rows = result.data;
    let truncated = rows.len() as u64 > MAX_ROWS;
    rows.truncate(MAX_ROWS as usize);
    Ok(Json(Answer {
        columns: result.meta,
        rows_returned: rows.len(),
        rows,
        truncated,
        limit: MAX_ROWS,
        statistics: result.statistics.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_positions_are_found() {
        let msg =
            "Code: 62, DB::Exception: Syntax error: failed at position 8 (line 1, col 8): FROM";
        assert_eq!(error_position(msg), Some(8));
        assert_eq!(
            error_position("Code: 60, DB::Exception: Table x doesn't exist"),
            None
        );
    }
}
