-- Silver: the current state of each entity, typed and cleaned.
--
-- Each table is a ReplacingMergeTree whose version is the change's PostgreSQL LSN,
-- so the newest change of a row wins however events are merged; a delete is kept as
-- a row with is_deleted = 1 (ClickHouse 18.16 has no two-argument
-- ReplacingMergeTree(version, is_deleted)). Read them through the *_current views,
-- which apply FINAL and drop deleted rows. Views are fed from the bronze Kafka tables
-- directly (see 0001).

CREATE DATABASE IF NOT EXISTS silver;

CREATE TABLE IF NOT EXISTS silver.accounts (
    account_id   String,
    user_name    String,
    email        String,
    country      String,
    signup_date  Date,
    version      UInt64,
    is_deleted   UInt8,
    source_ts_ms Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY account_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.accounts_mv TO silver.accounts AS
SELECT
    account_id, user_name, email, country,
    toDate(signup_date) AS signup_date,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_accounts_queue;

CREATE TABLE IF NOT EXISTS silver.merchants (
    merchant_id       String,
    merchant_name     String,
    merchant_category String,
    country           String,
    risk_rating       UInt8,
    version           UInt64,
    is_deleted        UInt8,
    source_ts_ms      Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY merchant_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.merchants_mv TO silver.merchants AS
SELECT
    merchant_id, merchant_name, merchant_category, country,
    toUInt8(risk_rating) AS risk_rating,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_merchants_queue;

CREATE TABLE IF NOT EXISTS silver.ip_geo (
    ip              String,
    country         String,
    city            String,
    is_proxy_or_vpn UInt8,
    version         UInt64,
    is_deleted      UInt8,
    source_ts_ms    Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY ip;

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.ip_geo_mv TO silver.ip_geo AS
SELECT
    ip, country, city, is_proxy_or_vpn,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_ip_geo_queue;

CREATE TABLE IF NOT EXISTS silver.fx_rates (
    date         Date,
    currency     String,
    rate_to_eur  Decimal(18, 6),
    version      UInt64,
    is_deleted   UInt8,
    source_ts_ms Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (date, currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.fx_rates_mv TO silver.fx_rates AS
SELECT
    toDate(date) AS date, currency,
    toDecimal64(rate_to_eur, 6) AS rate_to_eur,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_fx_rates_queue;

CREATE TABLE IF NOT EXISTS silver.transactions (
    transaction_id UUID,
    account_id     String,
    ts             DateTime,
    day            Date,
    amount         Decimal(18, 2),
    currency       String,
    merchant_id    String,
    status         String,
    ip             String,
    device_id      String,
    version        UInt64,
    is_deleted     UInt8,
    source_ts_ms   Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY transaction_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.transactions_mv TO silver.transactions AS
SELECT
    toUUID(transaction_id) AS transaction_id,
    account_id,
    toDateTime(intDiv(`timestamp`, 1000000)) AS ts,
    toDate(intDiv(`timestamp`, 86400000000)) AS day,
    toDecimal64(amount, 2) AS amount,
    currency, merchant_id, status, ip, device_id,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_transactions_queue;

CREATE TABLE IF NOT EXISTS silver.canary (
    id           Int32,
    token        String,
    version      UInt64,
    is_deleted   UInt8,
    source_ts_ms Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY id;

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.canary_mv TO silver.canary AS
SELECT
    id, token,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.findemo_canary_queue;

-- Current state: newest version of each row, deletes removed.
CREATE VIEW IF NOT EXISTS silver.accounts_current AS
SELECT account_id, user_name, email, country, signup_date
FROM silver.accounts FINAL WHERE is_deleted = 0;

CREATE VIEW IF NOT EXISTS silver.merchants_current AS
SELECT merchant_id, merchant_name, merchant_category, country, risk_rating
FROM silver.merchants FINAL WHERE is_deleted = 0;

CREATE VIEW IF NOT EXISTS silver.ip_geo_current AS
SELECT ip, country, city, is_proxy_or_vpn
FROM silver.ip_geo FINAL WHERE is_deleted = 0;

CREATE VIEW IF NOT EXISTS silver.fx_rates_current AS
SELECT date, currency, rate_to_eur
FROM silver.fx_rates FINAL WHERE is_deleted = 0;

-- Transactions with their amount in EUR at the day's rate. The rate is joined when
-- read, not when the transaction arrives: a materialized view with a JOIN fires only
-- for its left table, so a rate loaded after the transaction would never be applied.
-- A missing rate gives amount_eur = 0 (and rate_to_eur = 0), visible in verify.
CREATE VIEW IF NOT EXISTS silver.transactions_current AS
SELECT
    transaction_id, account_id, ts, day, amount, currency, merchant_id, status, ip,
    device_id, source_ts_ms, rate_to_eur, amount * rate_to_eur AS amount_eur
FROM (
    SELECT transaction_id, account_id, ts, day, amount, currency, merchant_id, status,
           ip, device_id, source_ts_ms
    FROM silver.transactions FINAL WHERE is_deleted = 0
) AS t
ANY LEFT JOIN (
    SELECT date AS day, currency, rate_to_eur
    FROM silver.fx_rates FINAL WHERE is_deleted = 0
) AS r USING (day, currency);
