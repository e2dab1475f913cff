-- Every materialized view that reads a Kafka table moves into the Kafka tables'
-- database, bronze, under a name that sorts after theirs ("to_bronze_*",
-- "to_silver_*"): ClickHouse 18.16 must never stream a block while only some of a
-- Kafka table's views are attached, or the others miss it for good.
--
-- ClickHouse 18.16 loads its databases one at a time in name order and starts each
-- one's tables once that database is loaded; it shuts them down in the same orders,
-- database by database and table by table, and a view that shuts down detaches from
-- its Kafka table at once. Before this file, silver's views lived in silver: after a
-- restart, bronze's Kafka tables streamed before silver's views were registered (seen:
-- 8,192 accounts and 16,530 transactions in bronze and not in silver). In bronze,
-- every view is registered before any table starts, a Kafka table waits until each
-- view's target is loaded, and at shutdown the Kafka tables ("findemo_canary_queue",
-- "raw_*_queue") stop before any "to_*" view detaches. On current ClickHouse
-- releases, which start tables only after every database is loaded, the move changes
-- names only.
--
-- Each new view is created before the old one is dropped: a block consumed in between
-- reaches a table twice rather than never. Silver's copies collapse (same key, same
-- LSN as version); bronze keeps every delivery, as it does for Debezium's own
-- at-least-once redeliveries.

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_bronze_raw_accounts TO bronze.raw_accounts AS
SELECT `account_id`, `user_name`, `email`, `country`, `signup_date`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_accounts_queue;

DROP TABLE IF EXISTS bronze.raw_accounts_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_bronze_raw_merchants TO bronze.raw_merchants AS
SELECT `merchant_id`, `merchant_name`, `merchant_category`, `country`, `risk_rating`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_merchants_queue;

DROP TABLE IF EXISTS bronze.raw_merchants_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_bronze_raw_ip_geo TO bronze.raw_ip_geo AS
SELECT `ip`, `country`, `city`, `is_proxy_or_vpn`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_ip_geo_queue;

DROP TABLE IF EXISTS bronze.raw_ip_geo_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_bronze_raw_fx_rates TO bronze.raw_fx_rates AS
SELECT `date`, `currency`, `rate_to_eur`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_fx_rates_queue;

DROP TABLE IF EXISTS bronze.raw_fx_rates_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_bronze_raw_transactions TO bronze.raw_transactions AS
SELECT `transaction_id`, `account_id`, `timestamp`, `amount`, `currency`, `merchant_id`, `status`, `ip`, `device_id`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_transactions_queue;

DROP TABLE IF EXISTS bronze.raw_transactions_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_bronze_findemo_canary TO bronze.findemo_canary AS
SELECT `id`, `token`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.findemo_canary_queue;

DROP TABLE IF EXISTS bronze.findemo_canary_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_accounts TO silver.accounts AS
SELECT
    account_id, user_name, email, country,
    toDate(signup_date) AS signup_date,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_accounts_queue;

DROP TABLE IF EXISTS silver.accounts_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_merchants TO silver.merchants AS
SELECT
    merchant_id, merchant_name, merchant_category, country,
    toUInt8(risk_rating) AS risk_rating,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_merchants_queue;

DROP TABLE IF EXISTS silver.merchants_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_ip_geo TO silver.ip_geo AS
SELECT
    ip, country, city, is_proxy_or_vpn,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_ip_geo_queue;

DROP TABLE IF EXISTS silver.ip_geo_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_fx_rates TO silver.fx_rates AS
SELECT
    toDate(date) AS date, currency,
    toDecimal64(rate_to_eur, 6) AS rate_to_eur,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.raw_fx_rates_queue;

DROP TABLE IF EXISTS silver.fx_rates_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_transactions TO silver.transactions AS
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

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_canary TO silver.canary AS
SELECT
    id, token,
    toUInt64(__lsn) AS version,
    toUInt8(__deleted = 'true') AS is_deleted,
    __source_ts_ms AS source_ts_ms
FROM bronze.findemo_canary_queue;

DROP TABLE IF EXISTS silver.canary_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_transactions_by_time TO silver.transactions_by_time AS
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

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.to_silver_transactions_by_account TO silver.transactions_by_account AS
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
