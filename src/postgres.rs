//! The stack's PostgreSQL: connecting with the generated credentials, and applying
//! `sql/postgres/` in order, each file in one transaction.

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, NoTls};

use crate::config::Config;
use crate::migrate::{self, Applied, MigrateError, Migration};
use crate::service::{Service, POSTGRES_DB};
use crate::state::Credentials;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL at {endpoint}: {reason}\nIs the stack up? `findemo status` tells.")]
    Connect { endpoint: String, reason: String },
    #[error(
        "{path}:{line}: {message}\n  in statement: {statement}\nNothing of {path} was applied."
    )]
    Migration {
        path: String,
        line: usize,
        statement: String,
        message: String,
    },
    #[error("PostgreSQL: {what}: {reason}")]
    Query { what: String, reason: String },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
}

/// Connects to the stack's database; the connection runs on its own task.
pub async fn connect(config: &Config, creds: &Credentials) -> Result<Client, PgError> {
    let port = config.service(Service::Postgres).port;
    let mut pg = tokio_postgres::Config::new();
    pg.host("127.0.0.1")
        .port(port)
        .user(&creds.postgres_user)
        .password(&creds.postgres_password)
        .dbname(POSTGRES_DB)
        .application_name("findemo")
        .connect_timeout(std::time::Duration::from_secs(5));
    let (client, connection) = pg.connect(NoTls).await.map_err(|e| PgError::Connect {
        endpoint: format!("127.0.0.1:{port}"),
        reason: reason(&e),
    })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(%err, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The message of a PostgreSQL error, with its cause when it is not the server's.
pub fn reason(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return db.message().to_string();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Turns a failed query into `PgError::Query` naming `what` was being done.
pub fn query_err(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
    let what = what.into();
    move |e| PgError::Query {
        what,
        reason: reason(&e),
    }
}

/// The files not yet applied, in order (an error if an applied one changed).
pub async fn pending<'a>(
    client: &Client,
    files: &'a [Migration],
) -> Result<Vec<&'a Migration>, PgError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS findemo_migrations (
                 path text PRIMARY KEY,
                 checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .map_err(query_err("create findemo_migrations"))?;
    let applied: Applied = client
        .query("SELECT path, checksum FROM findemo_migrations", &[])
        .await
        .map_err(query_err("read findemo_migrations"))?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    Ok(migrate::pending(files, &applied)?)
}

/// Applies one file and records it, in one transaction: all of it or nothing.
pub async fn apply(client: &mut Client, file: &Migration) -> Result<(), PgError> {
    let tx = client
        .transaction()
        .await
        .map_err(query_err("begin transaction"))?;
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
    let line = migrate::line_of(&file.sql, offset);
    let statement = migrate::statements(&file.sql)
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
