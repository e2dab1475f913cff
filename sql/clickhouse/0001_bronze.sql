-- Bronze: every change event as it arrived from Debezium, append-only.
--
-- Per source table: a Kafka engine table reading its topic (JSON flattened by
-- Debezium's ExtractNewRecordState, so each field is a column; DATE arrives as days
-- since the epoch, TIMESTAMP as microseconds, NUMERIC as a string), and a
-- materialized view copying each event into a MergeTree table with the time it was
-- ingested. The silver views read the same Kafka tables (0002): on ClickHouse 18.16 a
-- materialized view does not fire for rows another view inserts, so views are never
-- chained.
--
-- Placeholders (double braces) filled by findemo: kafka_broker, topic_prefix,
-- group_prefix, kafka_settings (extra Kafka engine settings on servers that know them).

CREATE DATABASE IF NOT EXISTS bronze;

CREATE TABLE IF NOT EXISTS bronze.raw_accounts_queue (
    `account_id` String,
    `user_name` String,
    `email` String,
    `country` String,
    `signup_date` Int32,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64
) ENGINE = Kafka SETTINGS
    kafka_broker_list = '{{kafka_broker}}',
    kafka_topic_list = '{{topic_prefix}}.public.raw_accounts',
    kafka_group_name = '{{group_prefix}}-raw_accounts',
    kafka_format = 'JSONEachRow'{{kafka_settings}};

CREATE TABLE IF NOT EXISTS bronze.raw_accounts (
    `account_id` String,
    `user_name` String,
    `email` String,
    `country` String,
    `signup_date` Int32,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64,
    `_ingested_at` DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(_ingested_at)
ORDER BY (account_id, __lsn);

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.raw_accounts_mv TO bronze.raw_accounts AS
SELECT `account_id`, `user_name`, `email`, `country`, `signup_date`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_accounts_queue;

CREATE TABLE IF NOT EXISTS bronze.raw_merchants_queue (
    `merchant_id` String,
    `merchant_name` String,
    `merchant_category` String,
    `country` String,
    `risk_rating` Int16,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64
) ENGINE = Kafka SETTINGS
    kafka_broker_list = '{{kafka_broker}}',
    kafka_topic_list = '{{topic_prefix}}.public.raw_merchants',
    kafka_group_name = '{{group_prefix}}-raw_merchants',
    kafka_format = 'JSONEachRow'{{kafka_settings}};

CREATE TABLE IF NOT EXISTS bronze.raw_merchants (
    `merchant_id` String,
    `merchant_name` String,
    `merchant_category` String,
    `country` String,
    `risk_rating` Int16,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64,
    `_ingested_at` DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(_ingested_at)
ORDER BY (merchant_id, __lsn);

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.raw_merchants_mv TO bronze.raw_merchants AS
SELECT `merchant_id`, `merchant_name`, `merchant_category`, `country`, `risk_rating`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_merchants_queue;

CREATE TABLE IF NOT EXISTS bronze.raw_ip_geo_queue (
    `ip` String,
    `country` String,
    `city` String,
    `is_proxy_or_vpn` UInt8,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64
) ENGINE = Kafka SETTINGS
    kafka_broker_list = '{{kafka_broker}}',
    kafka_topic_list = '{{topic_prefix}}.public.raw_ip_geo',
    kafka_group_name = '{{group_prefix}}-raw_ip_geo',
    kafka_format = 'JSONEachRow'{{kafka_settings}};

CREATE TABLE IF NOT EXISTS bronze.raw_ip_geo (
    `ip` String,
    `country` String,
    `city` String,
    `is_proxy_or_vpn` UInt8,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64,
    `_ingested_at` DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(_ingested_at)
ORDER BY (ip, __lsn);

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.raw_ip_geo_mv TO bronze.raw_ip_geo AS
SELECT `ip`, `country`, `city`, `is_proxy_or_vpn`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_ip_geo_queue;

CREATE TABLE IF NOT EXISTS bronze.raw_fx_rates_queue (
    `date` Int32,
    `currency` String,
    `rate_to_eur` String,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64
) ENGINE = Kafka SETTINGS
    kafka_broker_list = '{{kafka_broker}}',
    kafka_topic_list = '{{topic_prefix}}.public.raw_fx_rates',
    kafka_group_name = '{{group_prefix}}-raw_fx_rates',
    kafka_format = 'JSONEachRow'{{kafka_settings}};

CREATE TABLE IF NOT EXISTS bronze.raw_fx_rates (
    `date` Int32,
    `currency` String,
    `rate_to_eur` String,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64,
    `_ingested_at` DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(_ingested_at)
ORDER BY (date, currency, __lsn);

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.raw_fx_rates_mv TO bronze.raw_fx_rates AS
SELECT `date`, `currency`, `rate_to_eur`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_fx_rates_queue;

CREATE TABLE IF NOT EXISTS bronze.raw_transactions_queue (
    `transaction_id` String,
    `account_id` String,
    `timestamp` Int64,
    `amount` String,
    `currency` String,
    `merchant_id` String,
    `status` String,
    `ip` String,
    `device_id` String,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64
) ENGINE = Kafka SETTINGS
    kafka_broker_list = '{{kafka_broker}}',
    kafka_topic_list = '{{topic_prefix}}.public.raw_transactions',
    kafka_group_name = '{{group_prefix}}-raw_transactions',
    kafka_format = 'JSONEachRow'{{kafka_settings}};

CREATE TABLE IF NOT EXISTS bronze.raw_transactions (
    `transaction_id` String,
    `account_id` String,
    `timestamp` Int64,
    `amount` String,
    `currency` String,
    `merchant_id` String,
    `status` String,
    `ip` String,
    `device_id` String,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64,
    `_ingested_at` DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(_ingested_at)
ORDER BY (transaction_id, __lsn);

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.raw_transactions_mv TO bronze.raw_transactions AS
SELECT `transaction_id`, `account_id`, `timestamp`, `amount`, `currency`, `merchant_id`, `status`, `ip`, `device_id`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.raw_transactions_queue;

CREATE TABLE IF NOT EXISTS bronze.findemo_canary_queue (
    `id` Int32,
    `token` String,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64
) ENGINE = Kafka SETTINGS
    kafka_broker_list = '{{kafka_broker}}',
    kafka_topic_list = '{{topic_prefix}}.public.findemo_canary',
    kafka_group_name = '{{group_prefix}}-findemo_canary',
    kafka_format = 'JSONEachRow'{{kafka_settings}};

CREATE TABLE IF NOT EXISTS bronze.findemo_canary (
    `id` Int32,
    `token` String,
    `__deleted` String,
    `__op` String,
    `__source_ts_ms` Int64,
    `__lsn` Int64,
    `_ingested_at` DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMM(_ingested_at)
ORDER BY (id, __lsn);

CREATE MATERIALIZED VIEW IF NOT EXISTS bronze.findemo_canary_mv TO bronze.findemo_canary AS
SELECT `id`, `token`, `__deleted`, `__op`, `__source_ts_ms`, `__lsn`, now() AS _ingested_at
FROM bronze.findemo_canary_queue;
