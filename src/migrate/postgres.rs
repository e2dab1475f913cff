//! The migrator's PostgreSQL side: the records in `findemo_migrations`, and each file
//! applied and recorded in one transaction, so a file is all there or not at all.

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::Client;

use super::{Applied, Migration, Records};
use crate::clients::postgres::{query_err, reason, PgError};

impl Records for Client {
    type Error = PgError;

    /// Reads only: before the first file is applied there is no table, and nothing.
    async fn applied(&self) -> Result<Vec<Applied>, PgError> {
        let exists: bool = self
            .query_one("SELECT to_regclass('findemo_migrations') IS NOT NULL", &[])
            .await
            .map_err(query_err("look for findemo_migrations"))?
            .get(0);
        if !exists {
            return Ok(Vec::new());
        }
        Ok(self
            .query(
                "SELECT path, checksum FROM findemo_migrations ORDER BY applied_at",
                &[],
            )
            .await
            .map_err(query_err("read findemo_migrations"))?
            .iter()
            .map(|row| Applied {
                path: row.get(0),
                checksum: row.get(1),
            })
            .collect())
    }
}

const RECORDS_TABLE: &str = "CREATE TABLE IF NOT EXISTS findemo_migrations (
    path text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())";

/// Applies one file and records it, in one transaction: all of it or nothing.
pub async fn apply(client: &mut Client, file: &Migration) -> Result<(), PgError> {
    let tx = client
        .transaction()
        .await
        .map_err(query_err("begin transaction"))?;
    tx.batch_execute(RECORDS_TABLE)
        .await
        .map_err(query_err("create findemo_migrations"))?;
    if let Err(err) = tx.batch_execute(&file.sql).await {
        return Err(migration_error(file, &err));
    }
    tx.execute(
        "INSERT INTO findemo_migrations (path, checksum) VALUES ($1, $2)",
        &[&file.path, &file.checksum()],
    )
    .await
    .map_err(query_err("record migration"))?;
    tx.commit().await.map_err(query_err("commit migration"))
}

fn migration_error(file: &Migration, err: &tokio_postgres::Error) -> PgError {
    let offset = match err.as_db_error().and_then(|db| db.position()) {
        // A 1-based character position in the file's text.
        Some(ErrorPosition::Original(pos)) => file
            .sql
            .char_indices()
            .nth((*pos as usize).saturating_sub(1))
            .map_or(0, |(i, _)| i),
        _ => 0,
    };
    let line = super::line_of(&file.sql, offset);
    let statement = super::statements(&file.sql)
        .into_iter()
        .take_while(|(start, _)| *start <= line)
        .last()
        .map(|(_, s)| s.lines().next().unwrap_or("").to_string())
        .unwrap_or_default();
    PgError::Migration {
        path: file.path.clone(),
        line,
        statement,
        message: reason(err),
    }
}
