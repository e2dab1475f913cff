-- Silver's materialized views move into the bronze database, beside the Kafka tables
-- they read.
--
-- ClickHouse 18.16 loads databases one at a time in name order and starts a
-- database's tables once it is loaded. A Kafka table starts consuming as soon as the
-- views that are registered by then are ready, so after a restart bronze's Kafka
-- tables streamed before silver's views existed, and silver missed those blocks for
-- good (seen: 8,192 accounts in bronze and not in silver after `down` and `up`).
-- Views in the Kafka tables' own database are registered before any of its tables
-- starts, and a Kafka table waits until every view's target table is loaded.
--
-- Each new view is created before the old one is dropped: for that moment a block can
-- reach silver twice, and the copies collapse (same key, same LSN as version).

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.accounts_to_silver TO silver.accounts AS
SELECT
    account_id, user_name, email, country,
    toDate(signup_date) AS signup_date,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_accounts_queue;

DROP TABLE IF EXISTS silver.accounts_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.merchants_to_silver TO silver.merchants AS
SELECT
    merchant_id, merchant_name, merchant_category, country,
    toUInt8(risk_rating) AS risk_rating,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_merchants_queue;

DROP TABLE IF EXISTS silver.merchants_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.ip_geo_to_silver TO silver.ip_geo AS
SELECT
    ip, country, city, is_proxy_or_vpn,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_ip_geo_queue;

DROP TABLE IF EXISTS silver.ip_geo_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.fx_rates_to_silver TO silver.fx_rates AS
SELECT
    toDate(date) AS date, currency,
    toDecimal64(rate_to_eur, 6) AS rate_to_eur,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_fx_rates_queue;

DROP TABLE IF EXISTS silver.fx_rates_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.transactions_to_silver TO silver.transactions AS
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

DROP TABLE IF EXISTS silver.transactions_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.canary_to_silver TO silver.canary AS
SELECT
    id, token,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.findemo_canary_queue;

DROP TABLE IF EXISTS silver.canary_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.transactions_by_time_to_silver TO silver.transactions_by_time AS
SELECT
    toDateTime(intDiv(`timestamp`, 1000000)) AS ts,
    toUUID(transaction_id) AS transaction_id,
    toDate(intDiv(`timestamp`, 86400000000)) AS day,
    account_id,
    toDecimal64(amount, 2) AS amount,
    currency, merchant_id, status, ip, device_id,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_transactions_queue;

DROP TABLE IF EXISTS silver.transactions_by_time_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.transactions_by_account_to_silver TO silver.transactions_by_account AS
SELECT
    account_id,
    toDateTime(intDiv(`timestamp`, 1000000)) AS ts,
    toUUID(transaction_id) AS transaction_id,
    toDate(intDiv(`timestamp`, 86400000000)) AS day,
    toDecimal64(amount, 2) AS amount,
    currency, merchant_id, status, ip, device_id,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted
FROM bronze.raw_transactions_queue;

DROP TABLE IF EXISTS silver.transactions_by_account_mv;
