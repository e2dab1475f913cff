//! The analytics tables (transactions, merchants, accounts: searched, filtered, one
//! page at a time) and one transaction's history: every change event bronze holds for
//! it, in LSN order, next to its current row in silver.
//!
//! Every value a user types reaches ClickHouse through `bind` (escaped by the
//! client), never pasted into the SQL text.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{ApiError, App};

const MAX_PAGE_SIZE: u64 = 200;
/// The overview's counts are used while they are at most this old.
const INDEX_FRESH_SECS: u32 = 5;
/// Seconds read before the point the counts give, for rows deleted since.
const INDEX_MARGIN_SECS: u32 = 5;

#[derive(Debug, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: u64,
    size: Option<u64>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    merchant: String,
    #[serde(default)]
    category: String,
    risk: Option<u8>,
    #[serde(default)]
    country: String,
}

impl Search {
    fn size(&self) -> u64 {
        self.size.unwrap_or(25).clamp(1, MAX_PAGE_SIZE)
    }

    fn offset(&self) -> u64 {
        self.page.saturating_mul(self.size())
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    rows: Vec<T>,
    total: u64,
    page: u64,
    size: u64,
    elapsed_ms: f64,
}

/// A WHERE clause built from optional conditions, each with its bound values.
#[derive(Default)]
struct Filter {
    conditions: Vec<&'static str>,
    values: Vec<String>,
}

impl Filter {
    /// Adds `condition` (with one `?` per value) when `value` is not empty.
    fn add(&mut self, condition: &'static str, value: &str, times: usize) {
        let value = value.trim();
        if !value.is_empty() {
            self.conditions.push(condition);
            self.values
                .extend(std::iter::repeat_n(value.to_string(), times));
        }
    }

    fn sql(&self) -> String {
        if self.conditions.is_empty() {
            "1".to_string()
        } else {
            self.conditions.join(" AND ")
        }
    }

    fn bind(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        for value in &self.values {
            query = query.bind(value.as_str());
        }
        query
    }
}

#[derive(Debug, Serialize, Deserialize, clickhouse::Row)]
pub struct TxRow {
    transaction_id: String,
    account_id: String,
    ts: u32,
    amount: f64,
    currency: String,
    amount_eur: f64,
    merchant_id: String,
    merchant_name: String,
    status: String,
    ip: String,
    device_id: String,
}

#[derive(Deserialize, clickhouse::Row)]
struct Count {
    n: u64,
}

async fn total(app: &App, what: &str, from: &str, filter: &Filter) -> Result<u64, ApiError> {
    let sql = format!("SELECT count() AS n FROM {from} WHERE {}", filter.sql());
    let rows: Vec<Count> = app.ch.fetch(what, filter.bind(app.ch.query(&sql))).await?;
    Ok(rows.first().map_or(0, |r| r.n))
}

/// Current transactions (newest version, deletes removed), with the columns
/// [`with_eur_and_name`] needs. Laid out by time, so a page of the newest is cheap.
const CURRENT: &str = "silver.transactions_by_time FINAL WHERE is_deleted = 0";
/// The same, in silver's own order (by id).
const BY_ID: &str = "silver.transactions FINAL WHERE is_deleted = 0";
/// The same, laid out by account: cheap for the transactions of a few accounts.
const BY_ACCOUNT: &str = "silver.transactions_by_account FINAL WHERE is_deleted = 0";
const TX_COLUMNS: &str =
    "transaction_id, account_id, ts, day, amount, currency, merchant_id, status, ip, device_id";

/// `inner` (a query giving [`TX_COLUMNS`]) as [`TxRow`]s: the EUR amount and the
/// merchant's name are joined to its rows only, after any LIMIT. (ClickHouse 18.16
/// takes one JOIN per SELECT, hence the nesting.)
fn with_eur_and_name(inner: &str) -> String {
    format!(
        "SELECT toString(transaction_id) AS transaction_id, account_id, toUInt32(ts) AS ts, \
                toFloat64(amount) AS amount, currency, toFloat64(amount_eur) AS amount_eur, \
                merchant_id, merchant_name, status, ip, device_id \
         FROM (SELECT {TX_COLUMNS}, amount * rate_to_eur AS amount_eur \
               FROM ({inner}) AS t \
               ANY LEFT JOIN (SELECT date AS day, currency, rate_to_eur FROM silver.fx_rates FINAL \
                              WHERE is_deleted = 0) AS r USING (day, currency)) AS e \
         ANY LEFT JOIN (SELECT merchant_id, merchant_name FROM silver.merchants_current) AS m \
         USING (merchant_id)"
    )
}

/// `GET /api/transactions`: newest first.
pub async fn transactions(
    State(app): State<Arc<App>>,
    Query(search): Query<Search>,
) -> Result<Json<Page<TxRow>>, ApiError> {
    let started = Instant::now();
    let mut filter = Filter::default();
    // Text that is the start of an account id is looked up by account, a whole
    // transaction id by id; other text is searched for in every identifying column.
    let q = search.q.trim().to_ascii_lowercase();
    let current = match account_prefix(&q) {
        Some(prefix) => {
            // LIKE with a fixed prefix uses the sorting key (startsWith does not on 18.16).
            filter.add("account_id LIKE ?", &format!("{prefix}%"), 1);
            BY_ACCOUNT
        }
        // A whole transaction id: silver's own sorting key.
        None if is_uuid(&q) => {
            filter.add("transaction_id = toUUID(?)", &q, 1);
            BY_ID
        }
        None => {
            filter.add(
                "positionCaseInsensitive(concat(toString(transaction_id), ' ', account_id, ' ', \
                 merchant_id, ' ', ip, ' ', device_id), ?) > 0",
                &search.q,
                1,
            );
            CURRENT
        }
    };
    filter.add("status = ?", &search.status, 1);
    filter.add("currency = ?", &search.currency, 1);
    filter.add("account_id = ?", &search.account, 1);
    filter.add("merchant_id = ?", &search.merchant, 1);
    // Filtered by status and currency alone, the overview's fresh counts say how
    // many there are and how far back the page reaches, so only that much is read.
    let index = app.index.borrow().clone();
    let fresh = crate::dashboard::live::now_secs() as u32 <= index.at + INDEX_FRESH_SECS
        && [&search.q, &search.account, &search.merchant]
            .iter()
            .all(|f| f.trim().is_empty());
    let (status, currency) = (search.status.trim(), search.currency.trim());
    let wanted = search.offset() + search.size();
    let since = fresh
        .then(|| index.since(status, currency, wanted))
        .flatten();
    let read = |since: Option<u32>| {
        let bound = since.map_or(String::new(), |s| {
            // A margin for rows deleted since the counts were taken.
            format!(
                " AND ts >= toDateTime({})",
                s.saturating_sub(INDEX_MARGIN_SECS)
            )
        });
        let page = format!(
            "SELECT {TX_COLUMNS} FROM {current} AND {}{bound} \
             ORDER BY ts DESC, transaction_id LIMIT ?, ?",
            filter.sql()
        );
        let sql = format!(
            "{} ORDER BY ts DESC, transaction_id",
            with_eur_and_name(&page)
        );
        filter
            .bind(app.ch.query(&sql))
            .bind(search.offset())
            .bind(search.size())
    };
    let mut rows: Vec<TxRow> = app.ch.fetch("search transactions", read(since)).await?;
    if since.is_some() && (rows.len() as u64) < search.size() {
        // More was deleted in that span than the margin covers: read it all.
        rows = app.ch.fetch("search transactions", read(None)).await?;
    }
    let total = if fresh {
        index.total(status, currency)
    } else {
        // The conditions inside the FINAL read: 18.16 does not push them into a subquery.
        let sql = format!("SELECT count() AS n FROM {current} AND {}", filter.sql());
        let rows: Vec<Count> = app
            .ch
            .fetch("count transactions", filter.bind(app.ch.query(&sql)))
            .await?;
        rows.first().map_or(0, |r| r.n)
    };
    Ok(Json(Page {
        total,
        rows,
        page: search.page,
        size: search.size(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

#[derive(Debug, Serialize, Deserialize, clickhouse::Row)]
pub struct MerchantRow {
    merchant_id: String,
    merchant_name: String,
    merchant_category: String,
    country: String,
    risk_rating: u8,
    transactions: u64,
    total_eur: f64,
    failure_rate: f64,
}

const MERCHANT_FROM: &str = "(\
    SELECT merchant_id, merchant_name, merchant_category, country, risk_rating, \
           transactions, total_eur, failure_rate \
    FROM silver.merchants_current \
    ANY LEFT JOIN (SELECT merchant_id, count() AS transactions, \
                          toFloat64(sum(amount * rate_to_eur)) AS total_eur, \
                          countIf(status = 'failed') / count() AS failure_rate \
                   FROM (SELECT merchant_id, day, currency, amount, status \
                         FROM silver.transactions_by_time FINAL WHERE is_deleted = 0) AS t \
                   ANY LEFT JOIN (SELECT date AS day, currency, rate_to_eur FROM silver.fx_rates FINAL \
                                  WHERE is_deleted = 0) AS r USING (day, currency) \
                   GROUP BY merchant_id) AS s \
    USING (merchant_id))";

#[derive(Deserialize, clickhouse::Row)]
struct MerchantBase {
    merchant_id: String,
    merchant_name: String,
    merchant_category: String,
    country: String,
    risk_rating: u8,
}

const MERCHANT_BASE: &str = "(\
    SELECT merchant_id, merchant_name, merchant_category, country, risk_rating \
    FROM silver.merchants_current)";

/// `GET /api/merchants`: by id. Their figures come from the overview's fresh counts
/// (kept per minute for the whole history), else from silver.
pub async fn merchants(
    State(app): State<Arc<App>>,
    Query(search): Query<Search>,
) -> Result<Json<Page<MerchantRow>>, ApiError> {
    let started = Instant::now();
    let mut filter = Filter::default();
    filter.add(
        "positionCaseInsensitive(concat(merchant_id, ' ', merchant_name, ' ', country), ?) > 0",
        &search.q,
        1,
    );
    filter.add("merchant_category = ?", &search.category, 1);
    let risk = search.risk.map(|r| r.to_string()).unwrap_or_default();
    filter.add("toString(risk_rating) = ?", &risk, 1);
    let index = app.index.borrow().clone();
    let fresh = crate::dashboard::live::now_secs() as u32 <= index.at + INDEX_FRESH_SECS;
    let page = |from: &str| {
        let sql = format!(
            "SELECT * FROM {from} WHERE {} ORDER BY merchant_id LIMIT ?, ?",
            filter.sql()
        );
        filter
            .bind(app.ch.query(&sql))
            .bind(search.offset())
            .bind(search.size())
    };
    let rows = if fresh {
        let base: Vec<MerchantBase> = app
            .ch
            .fetch("search merchants", page(MERCHANT_BASE))
            .await?;
        base.into_iter()
            .map(|m| {
                let t = index
                    .merchants
                    .get(&m.merchant_id)
                    .copied()
                    .unwrap_or_default();
                MerchantRow {
                    merchant_id: m.merchant_id,
                    merchant_name: m.merchant_name,
                    merchant_category: m.merchant_category,
                    country: m.country,
                    risk_rating: m.risk_rating,
                    transactions: t.n,
                    total_eur: super::buckets::to_f64(t.eur),
                    failure_rate: if t.n == 0 {
                        0.0
                    } else {
                        t.failed as f64 / t.n as f64
                    },
                }
            })
            .collect()
    } else {
        app.ch
            .fetch("search merchants", page(MERCHANT_FROM))
            .await?
    };
    Ok(Json(Page {
        total: total(&app, "count merchants", MERCHANT_BASE, &filter).await?,
        rows,
        page: search.page,
        size: search.size(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

#[derive(Debug, Serialize, Deserialize, clickhouse::Row)]
pub struct AccountRow {
    account_id: String,
    user_name: String,
    email: String,
    country: String,
    signup_date: String,
    transactions: u64,
    total_eur: f64,
    devices: u64,
    proxy_transactions: u64,
}

#[derive(Deserialize, clickhouse::Row)]
struct AccountBase {
    account_id: String,
    user_name: String,
    email: String,
    country: String,
    signup_date: String,
}

#[derive(Deserialize, clickhouse::Row)]
struct AccountStats {
    account_id: String,
    transactions: u64,
    total_eur: f64,
    devices: u64,
    proxy_transactions: u64,
}

const ACCOUNT_FROM: &str = "(\
    SELECT account_id, user_name, email, country, toString(signup_date) AS signup_date \
    FROM silver.accounts_current)";

/// `GET /api/accounts`: by id; activity figures for the accounts of the page only.
pub async fn accounts(
    State(app): State<Arc<App>>,
    Query(search): Query<Search>,
) -> Result<Json<Page<AccountRow>>, ApiError> {
    let started = Instant::now();
    let mut filter = Filter::default();
    filter.add(
        "positionCaseInsensitive(concat(account_id, ' ', user_name, ' ', email), ?) > 0",
        &search.q,
        1,
    );
    filter.add("country = ?", &search.country, 1);
    let sql = format!(
        "SELECT * FROM {ACCOUNT_FROM} WHERE {} ORDER BY account_id LIMIT ?, ?",
        filter.sql()
    );
    let query = filter
        .bind(app.ch.query(&sql))
        .bind(search.offset())
        .bind(search.size());
    let base: Vec<AccountBase> = app.ch.fetch("search accounts", query).await?;
    let ids: Vec<&str> = base.iter().map(|a| a.account_id.as_str()).collect();
    let stats: Vec<AccountStats> = if ids.is_empty() {
        Vec::new()
    } else {
        // Laid out by account: only these accounts' granules are read.
        let sql = format!(
            "SELECT account_id, count() AS transactions, toFloat64(sum(amount_eur)) AS total_eur, \
                    uniqExact(device_id) AS devices, toUInt64(countIf(is_proxy_or_vpn = 1)) AS proxy_transactions \
             FROM (SELECT account_id, device_id, ip, amount * rate_to_eur AS amount_eur \
                   FROM (SELECT account_id, day, currency, amount, device_id, ip \
                         FROM silver.transactions_by_account FINAL \
                         WHERE account_id IN ({}) AND is_deleted = 0) AS t \
                   ANY LEFT JOIN (SELECT date AS day, currency, rate_to_eur FROM silver.fx_rates FINAL \
                                  WHERE is_deleted = 0) AS r USING (day, currency)) AS e \
             ANY LEFT JOIN (SELECT ip, is_proxy_or_vpn FROM silver.ip_geo_current) AS g USING (ip) \
             GROUP BY account_id",
            vec!["?"; ids.len()].join(", ")
        );
        let query = ids
            .iter()
            .fold(app.ch.query(&sql), |query, id| query.bind(*id));
        app.ch.fetch("account activity", query).await?
    };
    let rows = base
        .into_iter()
        .map(|a| {
            let s = stats.iter().find(|s| s.account_id == a.account_id);
            AccountRow {
                transactions: s.map_or(0, |s| s.transactions),
                total_eur: s.map_or(0.0, |s| s.total_eur),
                devices: s.map_or(0, |s| s.devices),
                proxy_transactions: s.map_or(0, |s| s.proxy_transactions),
                account_id: a.account_id,
                user_name: a.user_name,
                email: a.email,
                country: a.country,
                signup_date: a.signup_date,
            }
        })
        .collect();
    Ok(Json(Page {
        total: total(&app, "count accounts", ACCOUNT_FROM, &filter).await?,
        rows,
        page: search.page,
        size: search.size(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

#[derive(Debug, Serialize, Deserialize, clickhouse::Row)]
pub struct ChangeEvent {
    op: String,
    lsn: u64,
    source_ts_ms: i64,
    ingested_at: u32,
    status: String,
    amount: String,
    currency: String,
    merchant_id: String,
    deleted: u8,
}

#[derive(Debug, Serialize)]
pub struct History {
    transaction_id: String,
    current: Option<TxRow>,
    deleted: bool,
    events: Vec<ChangeEvent>,
}

#[derive(Deserialize, clickhouse::Row)]
struct Latest {
    is_deleted: u8,
}

/// The account id `q` is the start of (`ACC` and up to six digits, any case).
fn account_prefix(q: &str) -> Option<String> {
    let q = q.trim().to_ascii_uppercase();
    let digits = q.strip_prefix("ACC")?;
    (digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(q)
}

/// A UUID in its canonical text form.
fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `GET /api/tx/{id}`: every change event of one transaction, and its current row.
pub async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<History>, ApiError> {
    let id = id.trim().to_ascii_lowercase();
    if !is_uuid(&id) {
        return Err(ApiError::bad_request(format!(
            "'{id}' is not a transaction id (a UUID such as 0b7e1a52-6f0e-4c3e-9a57-2d0c5e1f9a10)"
        )));
    }
    let events_sql = "\
        SELECT __op AS op, toUInt64(__lsn) AS lsn, __source_ts_ms AS source_ts_ms, \
               toUInt32(_ingested_at) AS ingested_at, status, amount, currency, merchant_id, \
               toUInt8(__deleted = 'true') AS deleted \
        FROM bronze.raw_transactions WHERE transaction_id = ? ORDER BY lsn, ingested_at";
    let events = app
        .ch
        .fetch("change events", app.ch.query(events_sql).bind(&id))
        .await?;
    let current_sql = with_eur_and_name(&format!(
        "SELECT {TX_COLUMNS} FROM silver.transactions FINAL \
         WHERE transaction_id = toUUID(?) AND is_deleted = 0"
    ));
    let current: Vec<TxRow> = app
        .ch
        .fetch("current row", app.ch.query(&current_sql).bind(&id))
        .await?;
    let latest: Vec<Latest> = app
        .ch
        .fetch(
            "latest version",
            app.ch
                .query(
                    "SELECT is_deleted FROM silver.transactions FINAL \
                     WHERE transaction_id = toUUID(?)",
                )
                .bind(&id),
        )
        .await?;
    Ok(Json(History {
        transaction_id: id,
        deleted: latest.first().is_some_and(|l| l.is_deleted == 1),
        current: current.into_iter().next(),
        events,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_uuids_are_ids() {
        assert!(is_uuid("0b7e1a52-6f0e-4c3e-9a57-2d0c5e1f9a10"));
        assert!(!is_uuid("0b7e1a52-6f0e-4c3e-9a57-2d0c5e1f9a1"));
        assert!(!is_uuid("0b7e1a52x6f0e-4c3e-9a57-2d0c5e1f9a10"));
        assert!(!is_uuid("'; DROP TABLE x; --------------------"));
    }

    #[test]
    fn account_ids_and_their_starts_are_searched_by_account() {
        assert_eq!(account_prefix(" acc00012 ").as_deref(), Some("ACC00012"));
        assert_eq!(account_prefix("ACC").as_deref(), Some("ACC"));
        assert_eq!(account_prefix("ACC000123").as_deref(), Some("ACC000123"));
        assert_eq!(account_prefix("ACC0001234"), None);
        assert_eq!(account_prefix("ACCX"), None);
        assert_eq!(account_prefix("MER0001"), None);
        assert_eq!(account_prefix(""), None);
    }

    #[test]
    fn filters_bind_one_value_per_placeholder() {
        let mut f = Filter::default();
        assert_eq!(f.sql(), "1");
        f.add("a = ?", "  ", 1);
        assert_eq!(f.sql(), "1");
        f.add("a = ?", "x", 1);
        f.add("(b = ? OR c = ?)", " y ", 2);
        assert_eq!(f.sql(), "a = ? AND (b = ? OR c = ?)");
        assert_eq!(f.values, ["x", "y", "y"]);
    }
}
