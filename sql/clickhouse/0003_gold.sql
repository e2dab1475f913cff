-- Gold: business aggregates, computed from silver's current state when read.
--
-- They are views, not incrementally maintained tables, because they must equal the
-- same aggregation over PostgreSQL after every update and delete: an aggregate fed by
-- a materialized view over a ReplacingMergeTree would count every version of a row,
-- and one with a JOIN would miss late reference data. avg and distinct counts are
-- computed over the rows themselves (never summed partial averages). Output columns
-- never reuse an input column's name: ClickHouse resolves aliases before columns.

CREATE DATABASE IF NOT EXISTS gold;

-- One row per day (UTC) with transactions.
CREATE VIEW IF NOT EXISTS gold.daily_kpis AS
SELECT
    day,
    count() AS transactions,
    countIf(status = 'success') AS succeeded,
    countIf(status = 'failed') AS failed,
    countIf(status = 'pending') AS pending,
    -- Amounts as written, in mixed currencies: a checksum against the source.
    sum(amount) AS amount_sum,
    sum(amount_eur) AS total_eur,
    sumIf(amount_eur, status = 'success') AS settled_eur,
    avg(toFloat64(amount_eur)) AS avg_amount_eur,
    uniqExact(account_id) AS active_accounts,
    uniqExact(merchant_id) AS active_merchants
FROM silver.transactions_current
GROUP BY day;

-- One row per merchant with transactions.
CREATE VIEW IF NOT EXISTS gold.merchant_metrics AS
SELECT
    merchant_id, merchant_name, merchant_category, risk_rating,
    transactions, failed, total_eur, avg_amount_eur, customers,
    failed / transactions AS failure_rate
FROM (
    SELECT
        merchant_id,
        count() AS transactions,
        countIf(status = 'failed') AS failed,
        sum(amount_eur) AS total_eur,
        avg(toFloat64(amount_eur)) AS avg_amount_eur,
        uniqExact(account_id) AS customers
    FROM silver.transactions_current
    GROUP BY merchant_id
) AS t
ANY LEFT JOIN (
    SELECT merchant_id, merchant_name, merchant_category, risk_rating
    FROM silver.merchants_current
) AS m USING (merchant_id);

-- One row per account with transactions: signals a fraud model would start from.
CREATE VIEW IF NOT EXISTS gold.account_fraud_features AS
SELECT
    account_id,
    count() AS transactions,
    countIf(status = 'failed') AS failed,
    sum(amount_eur) AS total_eur,
    max(amount_eur) AS max_eur,
    countIf(amount_eur >= 1000) AS high_value,
    uniqExact(device_id) AS devices,
    uniqExact(ip) AS ips,
    uniqExact(ip_country) AS countries,
    countIf(is_proxy_or_vpn = 1) AS proxy_transactions,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM (
    SELECT account_id, status, amount_eur, device_id, ip, ts
    FROM silver.transactions_current
) AS t
ANY LEFT JOIN (
    SELECT ip, country AS ip_country, is_proxy_or_vpn
    FROM silver.ip_geo_current
) AS g USING (ip)
GROUP BY account_id;
