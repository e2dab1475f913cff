//! The migrator's ClickHouse side: the records in `findemo_meta.migrations`, and each
//! file run statement by statement, placeholders filled, then recorded.
//!
//! ClickHouse has no transactions, so every statement in those files is written to be
//! re-runnable (`IF NOT EXISTS`); a file that fails half-way is not recorded, and the
//! next `up` runs it again from the top. On a cluster each statement that changes the
//! schema is issued `ON CLUSTER` ([`super::cluster`]); the records are replicated too.

use super::{Applied, MigrateError, Migration, Records};
use crate::clients::clickhouse::{escape, first_line, ChError, ClickHouse};

impl Records for ClickHouse {
    type Error = ChError;

    /// Reads only: before the first file is applied there is no table, and nothing.
    async fn applied(&self) -> Result<Vec<Applied>, ChError> {
        let exists = self.exec("EXISTS TABLE findemo_meta.migrations").await?;
        if exists.trim() != "1" {
            return Ok(Vec::new());
        }
        #[derive(serde::Deserialize)]
        struct Row {
            path: String,
            checksum: String,
        }
        Ok(self
            .rows::<Row>("SELECT path, checksum FROM findemo_meta.migrations ORDER BY applied_at")
            .await?
            .into_iter()
            .map(|r| Applied {
                path: r.path,
                checksum: r.checksum,
            })
            .collect())
    }
}

/// Runs the file's statements in order, placeholders filled, then records it.
pub async fn apply(
    ch: &ClickHouse,
    file: &Migration,
    vars: &[(&str, &str)],
) -> Result<(), ChError> {
    // Render each statement, not the file: comments may mention placeholders.
    let statements = super::statements(&file.sql)
        .into_iter()
        .map(|(line, s)| Ok((line, super::render(&file.path, &s, vars)?)))
        .collect::<Result<Vec<_>, MigrateError>>()?;
    for (number, (line, statement)) in statements.into_iter().enumerate() {
        if let Err(err) = ch.ddl(&statement).await {
            let message = match err {
                ChError::Query { message, .. } => message,
                other => return Err(other),
            };
            return Err(ChError::Migration {
                path: file.path.clone(),
                line,
                number: number + 1,
                statement: first_line(&statement).to_string(),
                message,
            });
        }
    }
    ch.ddl("CREATE DATABASE IF NOT EXISTS findemo_meta").await?;
    ch.ddl(
        "CREATE TABLE IF NOT EXISTS findemo_meta.migrations \
         (path String, checksum String, applied_at DateTime DEFAULT now()) \
         ENGINE = MergeTree ORDER BY path",
    )
    .await?;
    ch.exec(&format!(
        "INSERT INTO findemo_meta.migrations (path, checksum) VALUES ('{}', '{}')",
        escape(&file.path),
        file.checksum()
    ))
    .await?;
    Ok(())
}
