-- The dashboard's account reads: transactions laid out by account.
--
-- An account's activity (the accounts table) and a search by account id read every
-- current transaction when silver is ordered by transaction_id or by time. This table
-- holds the same change events ordered by account, then time: a read for a few
-- accounts touches only their granules. A transaction's account never changes, so
-- every version of a row shares one sorting key and ReplacingMergeTree keeps the
-- newest by LSN; duplicated deliveries collapse the same way.

CREATE TABLE IF NOT EXISTS silver.transactions_by_account (
    account_id     String,
    ts             DateTime,
    transaction_id UUID,
    day            Date,
    amount         Decimal(18, 2),
    currency       String,
    merchant_id    String,
    status         String,
    ip             String,
    device_id      String,
    version        UInt64,
    is_deleted     UInt8
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (account_id, ts, transaction_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS silver.transactions_by_account_mv TO silver.transactions_by_account AS
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

-- A stack created before this file: copy what silver already holds. Events consumed
-- meanwhile land in both tables, and the copies collapse with them by version.
INSERT INTO silver.transactions_by_account
SELECT account_id, ts, transaction_id, day, amount, currency, merchant_id, status, ip,
       device_id, version, is_deleted
FROM silver.transactions;
