//! The stack's PostgreSQL: connecting with the generated credentials, and the error
//! type every caller shares (the migrator applies `sql/postgres/`, see
//! [`crate::migrate::postgres`]).

use std::time::Duration;

use tokio_postgres::Client;

use crate::config::SslMode;
use crate::endpoints::PgEndpoint;
use crate::migrate::MigrateError;

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

/// Connects to the pipeline's database; the connection runs on its own task.
pub async fn connect(ep: &PgEndpoint) -> Result<Client, PgError> {
    open(ep, Duration::from_secs(5))
        .await
        .map_err(|e| PgError::Connect {
            endpoint: ep.address(),
            reason: reason(&e),
        })
}

/// Connects to the pipeline's database, giving up after `timeout`; the connection runs
/// on its own task. The raw error, so that a caller can tell refused credentials
/// (SQLSTATE class 28) from a server not up yet.
pub async fn open(ep: &PgEndpoint, timeout: Duration) -> Result<Client, tokio_postgres::Error> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&ep.host)
        .port(ep.port)
        .user(&ep.user)
        .password(ep.password.expose())
        .dbname(&ep.database)
        .application_name("findemo")
        .connect_timeout(timeout)
        .ssl_mode(match ep.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
    let (client, connection) = pg.connect(ep.tls.0.clone()).await?;
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
