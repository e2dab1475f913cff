-- What the live dashboard reads: transactions laid out by time.
--
-- silver.transactions is ordered by transaction_id, so a window such as "the last 15
-- minutes" reads the whole history. This table holds the same change events ordered
-- by the transaction's own time (which never changes for a row, so every version of a
-- row shares one sorting key and ReplacingMergeTree keeps only the newest by LSN), and
-- a window read with FINAL touches only the parts and granules of that window.
-- Duplicated deliveries (Debezium is at-least-once) collapse like any other version.

CREATE TABLE IF NOT EXISTS silver.transactions_by_time (
    ts             DateTime,
    transaction_id UUID,
    day            Date,
    account_id     String,
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
PARTITION BY toYYYYMM(day)
ORDER BY (ts, transaction_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.transactions_by_time_mv TO silver.transactions_by_time AS
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

-- A stack created before this file: copy what silver already holds. Events consumed
-- meanwhile land in both tables, and the copies collapse with them by version.
INSERT INTO silver.transactions_by_time
SELECT ts, transaction_id, day, account_id, amount, currency, merchant_id, status, ip,
       device_id, version, is_deleted, source_ts_ms
FROM silver.transactions;
