//! The generator's PostgreSQL side: checks the schema, inserts reference data
//! idempotently, and writes each batch in one database transaction that also advances
//! the seed's progress row. That row is the whole crash-safety story: whatever
//! happened to the process or the connection, the row says exactly which batches are
//! committed, so a retry or a re-run continues there without loss or duplicates.
//!
//! New transactions go in one of two ways ([`WriteMethod`]). By default the batch's
//! binary COPY stream fills a temporary staging table (created on every connection;
//! temporary tables write no WAL) and one `INSERT ... SELECT` moves the rows into
//! `raw_transactions`, which logs one heap-insert WAL record per row. A plain `COPY`
//! into the table (opt-in) logs multi-insert records, many rows at one WAL position,
//! which released Debezium connectors cannot resume in the middle of.

use std::time::Duration;

use futures_util::SinkExt;
use tokio::sync::watch;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::batch::{Batch, COLUMNS};
use super::world::{self, AccountRow, Currency, IpRow, MerchantRow};
use super::{clock, stopped, GenerateError, Observer};
use crate::clients::postgres::PgError;
use crate::config::WriteMethod;
use crate::endpoints::PgEndpoint;
use crate::retry::{Backoff, Limit};

const PROGRESS_SQL: &str = include_str!("../../sql/generator/progress.sql");
/// A batch that takes longer than this is abandoned (the connection dropped) and
/// retried: the server is hung or unreachable.
const BATCH_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// Reference rows per INSERT statement.
const REFERENCE_CHUNK: usize = 20_000;

/// A UUID as PostgreSQL's binary `uuid` (16 bytes), without a UUID crate.
#[derive(Debug)]
struct PgUuid([u8; 16]);

impl ToSql for PgUuid {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    to_sql_checked!();
}

/// What a batch write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub settled: u64,
    pub deleted: u64,
    /// Attempts that failed before this one succeeded.
    pub retries: u32,
}

/// Reference rows: how many the pools hold, and how many were new.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub total: u64,
    pub new: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ReferenceCounts {
    pub accounts: Counted,
    pub merchants: Counted,
    pub ips: Counted,
    pub fx_rates: Counted,
}

/// The per-connection staging table of [`WriteMethod::Insert`]. Temporary, so it
/// writes no WAL and is gone with the connection; emptied at every commit.
const STAGING_SQL: &str = "CREATE TEMPORARY TABLE findemo_staging (LIKE raw_transactions) \
     ON COMMIT DELETE ROWS";

/// The COPY statement that loads a batch's rows into `table`.
fn copy_sql(table: &str) -> String {
    format!("COPY {table} ({COLUMNS}) FROM STDIN (FORMAT binary)")
}

/// The statement that moves staged rows into `raw_transactions`, one heap insert (and
/// one WAL record) per row.
fn move_staged_sql() -> String {
    format!("INSERT INTO raw_transactions ({COLUMNS}) SELECT {COLUMNS} FROM findemo_staging")
}

/// One connection and its prepared statements.
struct Conn {
    client: Client,
    advance: Statement,
    next: Statement,
    /// COPY into `raw_transactions`, or into the staging table.
    copy: Statement,
    /// Staging to `raw_transactions` (with [`WriteMethod::Insert`]).
    move_staged: Option<Statement>,
    settle: Statement,
    delete: Statement,
    fx: Statement,
}

/// Connects with the stack's credentials and takes the seed's lock. Every connection
/// takes it, reconnections included: the lock is the session's, and a server restart
/// frees it. Commits stay synchronous, so a committed batch survives a server crash
/// and the progress row never falls behind what this run was told.
async fn connect(pg: &PgEndpoint, seed: u64) -> Result<Client, GenerateError> {
    let client = crate::clients::postgres::connect(pg).await?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key(seed)])
        .await
        .map_err(|e| query_error("take the seed's lock", &e))?
        .get(0);
    if !locked {
        return Err(GenerateError::Busy { seed });
    }
    Ok(client)
}

impl Conn {
    async fn prepare(client: Client, method: WriteMethod) -> Result<Conn, GenerateError> {
        let (copy, move_staged) = match method {
            WriteMethod::Copy => (copy_sql("raw_transactions"), None),
            WriteMethod::Insert => {
                // A new connection has no temporary tables: make it here, every time.
                client
                    .batch_execute(STAGING_SQL)
                    .await
                    .map_err(|e| query_error("create the staging table", &e))?;
                (copy_sql("findemo_staging"), Some(move_staged_sql()))
            }
        };
        let prepare = |sql: &str| {
            let client = &client;
            let sql = sql.to_string();
            async move {
                client
                    .prepare(&sql)
                    .await
                    .map_err(|e| query_error("prepare statements", &e))
            }
        };
        let move_staged = match move_staged {
            Some(sql) => Some(prepare(&sql).await?),
            None => None,
        };
        Ok(Conn {
            move_staged,
            advance: prepare(
                "UPDATE findemo_generator_progress SET next_seq = $3, updated_at = now() \
                 WHERE seed = $1 AND next_seq = $2",
            )
            .await?,
            next: prepare("SELECT next_seq FROM findemo_generator_progress WHERE seed = $1")
                .await?,
            copy: prepare(&copy).await?,
            settle: prepare(
                "UPDATE raw_transactions AS t SET status = v.status \
                 FROM unnest($1::uuid[], $2::text[]) AS v(id, status) \
                 WHERE t.transaction_id = v.id AND t.status = 'pending'",
            )
            .await?,
            delete: prepare("DELETE FROM raw_transactions WHERE transaction_id = ANY($1::uuid[])")
                .await?,
            fx: prepare(
                "INSERT INTO raw_fx_rates (date, currency, rate_to_eur) \
                 SELECT d::date, c, r::numeric FROM unnest($1::text[], $2::text[], $3::text[]) \
                 AS v(d, c, r) ON CONFLICT DO NOTHING",
            )
            .await?,
            client,
        })
    }

    async fn open(pg: &PgEndpoint, seed: u64, method: WriteMethod) -> Result<Conn, GenerateError> {
        Conn::prepare(connect(pg, seed).await?, method).await
    }

    async fn next_seq(&self, seed: i64) -> Result<u64, tokio_postgres::Error> {
        let row = self.client.query_one(&self.next, &[&seed]).await?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

/// Why one attempt at a batch failed.
enum Attempt {
    /// The connection or server went away: reconnect and retry.
    Transient(String),
    Fatal(GenerateError),
}

fn query_error(what: &'static str, err: &tokio_postgres::Error) -> GenerateError {
    GenerateError::Query {
        what,
        reason: crate::clients::postgres::reason(err),
    }
}

/// Errors worth a retry on a new connection: the connection broke (no SQLSTATE), the
/// server is shutting down or starting (57P0x), out of connections or resources (53),
/// or a transaction lost a race (40001, 40P01).
fn is_transient(err: &tokio_postgres::Error) -> bool {
    match err.code() {
        None => true,
        Some(state) => {
            let code = state.code();
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "40001"
                || code == "40P01"
        }
    }
}

fn attempt_error(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Attempt {
    move |err| {
        if is_transient(&err) {
            Attempt::Transient(format!(
                "{what}: {}",
                crate::clients::postgres::reason(&err)
            ))
        } else {
            Attempt::Fatal(query_error(what, &err))
        }
    }
}

/// Writes one seed's batches.
pub struct Writer {
    pg: PgEndpoint,
    seed: u64,
    retry_for: Duration,
    method: WriteMethod,
    conn: Option<Conn>,
}

impl Writer {
    /// Connects, checks the schema, creates the progress table and the seed's row, and
    /// makes sure no other generator writes this seed.
    pub async fn open(
        pg: &PgEndpoint,
        seed: u64,
        retry_for: Duration,
        method: WriteMethod,
    ) -> Result<Writer, GenerateError> {
        let client = connect(pg, seed).await?;
        let q = |what: &'static str| move |e: tokio_postgres::Error| query_error(what, &e);
        let missing: Option<String> = client
            .query_one(
                "SELECT string_agg(t, ', ') FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NULL",
                // The tables `findemo up` creates that the generator writes.
                &[&crate::catalogue::silver_views().map(|(t, _)| t).collect::<Vec<_>>()],
            )
            .await
            .map_err(q("check the schema"))?
            .get(0);
        if let Some(missing) = missing {
            return Err(GenerateError::NoSchema { missing });
        }
        client
            .batch_execute(PROGRESS_SQL)
            .await
            .map_err(q("create findemo_generator_progress"))?;
        client
            .execute(
                "INSERT INTO findemo_generator_progress (seed) VALUES ($1) ON CONFLICT DO NOTHING",
                &[&(seed as i64)],
            )
            .await
            .map_err(q("create the seed's progress row"))?;
        Ok(Writer {
            pg: pg.clone(),
            seed,
            retry_for,
            method,
            conn: Some(Conn::prepare(client, method).await?),
        })
    }

    /// The next transaction number of the seed: where this run starts.
    pub async fn next_seq(&mut self) -> Result<u64, GenerateError> {
        let seed = self.seed as i64;
        let conn = self.conn().await?;
        conn.next_seq(seed)
            .await
            .map_err(|e| query_error("read progress", &e))
    }

    async fn conn(&mut self) -> Result<&mut Conn, GenerateError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => Conn::open(&self.pg, self.seed, self.method).await?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Inserts the pools and FX rates for `fx_days`, keeping rows that exist.
    pub async fn insert_reference(
        &mut self,
        accounts: &[AccountRow],
        merchants: &[MerchantRow],
        ips: &[IpRow],
        fx_days: std::ops::Range<i64>,
    ) -> Result<ReferenceCounts, GenerateError> {
        let client = &self.conn().await?.client;
        let q = |what: &'static str| move |e: tokio_postgres::Error| query_error(what, &e);
        let mut counts = ReferenceCounts::default();

        let sql = "INSERT INTO raw_accounts (account_id, user_name, email, country, signup_date) \
                   SELECT a, n, e, c, d::date \
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                   AS v(a, n, e, c, d) ON CONFLICT DO NOTHING";
        for chunk in accounts.chunks(REFERENCE_CHUNK) {
            let col = |f: fn(&AccountRow) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
            counts.accounts.new += client
                .execute(
                    sql,
                    &[
                        &col(|r| &r.id),
                        &col(|r| &r.user_name),
                        &col(|r| &r.email),
                        &col(|r| r.country),
                        &col(|r| &r.signup_date),
                    ],
                )
                .await
                .map_err(q("insert accounts"))?;
        }
        counts.accounts.total = accounts.len() as u64;

        let sql = "INSERT INTO raw_merchants \
                   (merchant_id, merchant_name, merchant_category, country, risk_rating) \
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int2[]) \
                   ON CONFLICT DO NOTHING";
        for chunk in merchants.chunks(REFERENCE_CHUNK) {
            let col = |f: fn(&MerchantRow) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
            let risk: Vec<i16> = chunk.iter().map(|r| r.risk).collect();
            counts.merchants.new += client
                .execute(
                    sql,
                    &[
                        &col(|r| &r.id),
                        &col(|r| &r.name),
                        &col(|r| r.category),
                        &col(|r| r.country),
                        &risk,
                    ],
                )
                .await
                .map_err(q("insert merchants"))?;
        }
        counts.merchants.total = merchants.len() as u64;

        let sql = "INSERT INTO raw_ip_geo (ip, country, city, is_proxy_or_vpn) \
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) \
                   ON CONFLICT DO NOTHING";
        for chunk in ips.chunks(REFERENCE_CHUNK) {
            let col = |f: fn(&IpRow) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
            let proxy: Vec<bool> = chunk.iter().map(|r| r.proxy).collect();
            counts.ips.new += client
                .execute(
                    sql,
                    &[
                        &col(|r| &r.ip),
                        &col(|r| r.country),
                        &col(|r| r.city),
                        &proxy,
                    ],
                )
                .await
                .map_err(q("insert IP geolocation"))?;
        }
        counts.ips.total = ips.len() as u64;

        let (days, codes, rates) = fx_columns(fx_days.clone());
        let conn = self.conn().await?;
        counts.fx_rates.new = conn
            .client
            .execute(&conn.fx, &[&days, &codes, &rates])
            .await
            .map_err(q("insert FX rates"))?;
        counts.fx_rates.total = days.len() as u64;
        Ok(counts)
    }

    /// Writes `batch` in one database transaction, retrying on a new connection while
    /// PostgreSQL is away (up to the configured time). Stops retrying, with
    /// [`GenerateError::Interrupted`], if `shutdown` is set meanwhile.
    pub async fn write(
        &mut self,
        batch: &Batch,
        observer: &dyn Observer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Written, GenerateError> {
        let mut backoff = Backoff::new(
            Limit::Within(self.retry_for),
            FIRST_RETRY_DELAY,
            MAX_RETRY_DELAY,
        );
        loop {
            let attempt = tokio::time::timeout(BATCH_TIMEOUT, self.try_write(batch)).await;
            let reason = match attempt {
                Ok(Ok(written)) => {
                    let retries = backoff.failures();
                    if retries > 0 {
                        observer.notice(&format!(
                            "PostgreSQL is back: batch {}..{} written after {retries} {}",
                            batch.first,
                            batch.end,
                            if retries == 1 { "retry" } else { "retries" }
                        ));
                    }
                    return Ok(Written { retries, ..written });
                }
                Ok(Err(Attempt::Fatal(err))) => return Err(err),
                Ok(Err(Attempt::Transient(reason))) => reason,
                Err(_) => format!("no answer within {}s", BATCH_TIMEOUT.as_secs()),
            };
            // The connection may be mid-transaction or dead: start over on a new one.
            self.conn = None;
            observer.retry(&reason);
            let Some(delay) = backoff.next() else {
                return Err(GenerateError::GaveUp {
                    first: batch.first,
                    end: batch.end,
                    attempts: backoff.failures(),
                    waited: backoff.elapsed(),
                    reason,
                });
            };
            observer.notice(&format!(
                "cannot write batch {}..{} ({reason}); retrying in {:.1}s",
                batch.first,
                batch.end,
                delay.as_secs_f64()
            ));
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(shutdown) => return Err(GenerateError::Interrupted),
            }
        }
    }

    /// One attempt, on the open connection or a new one. The connection is kept only
    /// if the attempt succeeds (or is cancelled by the caller's timeout: then dropped).
    async fn try_write(&mut self, batch: &Batch) -> Result<Written, Attempt> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => match Conn::open(&self.pg, self.seed, self.method).await {
                Ok(conn) => conn,
                Err(GenerateError::Postgres(PgError::Connect { endpoint, reason })) => {
                    return Err(Attempt::Transient(format!(
                        "connect to {endpoint}: {reason}"
                    )))
                }
                Err(GenerateError::Postgres(err)) => {
                    return Err(Attempt::Transient(err.to_string()))
                }
                Err(GenerateError::Query { what, reason }) => {
                    return Err(Attempt::Transient(format!("{what}: {reason}")))
                }
                Err(err) => return Err(Attempt::Fatal(err)),
            },
        };
        let written = write_batch(&mut conn, self.seed, batch).await?;
        self.conn = Some(conn);
        Ok(written)
    }
}

async fn write_batch(conn: &mut Conn, seed_u64: u64, batch: &Batch) -> Result<Written, Attempt> {
    let seed = seed_u64 as i64;
    let Conn {
        client,
        advance,
        next,
        copy,
        move_staged,
        settle,
        delete,
        fx,
    } = conn;
    let tx = client.transaction().await.map_err(attempt_error("begin"))?;
    let moved = tx
        .execute(
            &*advance,
            &[&seed, &(batch.first as i64), &(batch.end as i64)],
        )
        .await
        .map_err(attempt_error("advance progress"))?;
    if moved == 0 {
        drop(tx);
        let row = client
            .query_one(&*next, &[&seed])
            .await
            .map_err(attempt_error("read progress"))?;
        let found = row.get::<_, i64>(0) as u64;
        if found >= batch.end {
            // An earlier attempt committed, but its answer was lost with the
            // connection.
            return Ok(Written {
                inserted: batch.rows(),
                settled: batch.settle.len() as u64,
                deleted: batch.delete.len() as u64,
                retries: 0,
            });
        }
        return Err(Attempt::Fatal(GenerateError::Conflict {
            seed: seed_u64,
            expected: batch.first,
            found,
        }));
    }
    if !batch.fx_days.is_empty() {
        let (days, codes, rates) = fx_columns(batch.fx_days.clone());
        tx.execute(&*fx, &[&days, &codes, &rates])
            .await
            .map_err(attempt_error("insert FX rates"))?;
    }
    let sink = tx
        .copy_in::<_, bytes::Bytes>(&*copy)
        .await
        .map_err(attempt_error("start COPY"))?;
    let mut sink = std::pin::pin!(sink);
    sink.send(batch.copy.clone())
        .await
        .map_err(attempt_error("COPY transactions"))?;
    let mut inserted = sink
        .as_mut()
        .finish()
        .await
        .map_err(attempt_error("COPY transactions"))?;
    if let Some(move_staged) = move_staged {
        inserted = tx
            .execute(&*move_staged, &[])
            .await
            .map_err(attempt_error("insert staged transactions"))?;
    }
    let mut settled = 0;
    if !batch.settle.is_empty() {
        let ids: Vec<PgUuid> = batch.settle.iter().map(|(id, _)| PgUuid(*id)).collect();
        let statuses: Vec<&str> = batch.settle.iter().map(|(_, s)| s.as_str()).collect();
        settled = tx
            .execute(&*settle, &[&ids, &statuses])
            .await
            .map_err(attempt_error("settle pending transactions"))?;
    }
    let mut deleted = 0;
    if !batch.delete.is_empty() {
        let ids: Vec<PgUuid> = batch.delete.iter().map(|id| PgUuid(*id)).collect();
        deleted = tx
            .execute(&*delete, &[&ids])
            .await
            .map_err(attempt_error("delete transactions"))?;
    }
    tx.commit().await.map_err(attempt_error("commit"))?;
    Ok(Written {
        inserted,
        settled,
        deleted,
        retries: 0,
    })
}

/// The advisory lock key of a seed: the seed mixed with a salt ("findemo" in ASCII),
/// so small seeds do not land on the small keys other users of advisory locks pick.
/// Every generator process must compute the same key for a seed, in every version.
fn lock_key(seed: u64) -> i64 {
    (0x6669_6e64_656d_6f00_u64 ^ super::rng::mix(seed)) as i64
}

/// FX rates of `days` for each currency, as text columns for `unnest`.
fn fx_columns(days: std::ops::Range<i64>) -> (Vec<String>, Vec<&'static str>, Vec<String>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for day in days {
        for currency in Currency::ALL {
            out.0.push(clock::date_string(day));
            out.1.push(currency.code());
            out.2.push(format!("{:.6}", world::fx_rate(day, currency)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fx_columns_cover_every_currency_each_day() {
        let day = clock::days_from_civil(2025, 3, 1);
        let (days, codes, rates) = fx_columns(day..day + 2);
        assert_eq!(
            days,
            ["2025-03-01"; 3]
                .iter()
                .chain(&["2025-03-02"; 3])
                .copied()
                .collect::<Vec<_>>()
        );
        assert_eq!(codes, ["EUR", "USD", "GBP", "EUR", "USD", "GBP"]);
        assert_eq!(rates[0], "1.000000");
        assert!(rates.iter().all(|r| r.len() == 8));
    }

    #[test]
    fn staged_rows_move_column_for_column() {
        assert_eq!(
            copy_sql("findemo_staging"),
            format!("COPY findemo_staging ({COLUMNS}) FROM STDIN (FORMAT binary)")
        );
        let insert = move_staged_sql();
        let (into, from) = insert.split_once(" SELECT ").expect("INSERT ... SELECT");
        assert_eq!(into, format!("INSERT INTO raw_transactions ({COLUMNS})"));
        assert_eq!(from, format!("{COLUMNS} FROM findemo_staging"));
        assert_eq!(COLUMNS.split(", ").count(), 9);
        assert!(STAGING_SQL.contains("TEMPORARY") && STAGING_SQL.contains("ON COMMIT DELETE ROWS"));
    }

    #[test]
    fn lock_keys_differ_by_seed_and_never_change() {
        let keys: std::collections::HashSet<i64> = (0..10_000).map(lock_key).collect();
        assert_eq!(keys.len(), 10_000, "two seeds share a lock");
        assert!((0..10_000).all(|seed| lock_key(seed).unsigned_abs() > 1 << 32));
        assert_eq!(
            lock_key(1),
            LOCK_KEY_OF_SEED_1,
            "a changed key lets two versions run one seed at once"
        );
    }

    const LOCK_KEY_OF_SEED_1: i64 = 3_529_547_196_030_937_829;
}
