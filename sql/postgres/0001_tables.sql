-- The bank's OLTP tables, as the original demo named them.
-- Every column is NOT NULL: change events then always carry every field, which
-- ClickHouse's JSONEachRow input needs.

CREATE TABLE IF NOT EXISTS raw_accounts (
    account_id   text PRIMARY KEY,
    user_name    text NOT NULL,
    email        text NOT NULL,
    country      char(2) NOT NULL,
    signup_date  date NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_merchants (
    merchant_id        text PRIMARY KEY,
    merchant_name      text NOT NULL,
    merchant_category  text NOT NULL
        CHECK (merchant_category IN ('Retail', 'Food', 'Travel', 'Electronics')),
    country            char(2) NOT NULL,
    -- 1 (low risk) .. 5 (high risk)
    risk_rating        smallint NOT NULL CHECK (risk_rating BETWEEN 1 AND 5)
);

CREATE TABLE IF NOT EXISTS raw_ip_geo (
    ip               text PRIMARY KEY,
    country          char(2) NOT NULL,
    city             text NOT NULL,
    is_proxy_or_vpn  boolean NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_fx_rates (
    date         date NOT NULL,
    currency     char(3) NOT NULL,
    rate_to_eur  numeric(12, 6) NOT NULL,
    PRIMARY KEY (date, currency)
);

CREATE TABLE IF NOT EXISTS raw_transactions (
    transaction_id  uuid PRIMARY KEY,
    account_id      text NOT NULL,
    -- UTC, without time zone: Debezium sends it as microseconds since the epoch.
    "timestamp"     timestamp NOT NULL,
    amount          numeric(12, 2) NOT NULL,
    currency        char(3) NOT NULL,
    merchant_id     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'success', 'failed')),
    ip              text NOT NULL,
    device_id       text NOT NULL
);

-- One row, updated by `findemo up` to prove that a change flows end to end.
CREATE TABLE IF NOT EXISTS findemo_canary (
    id     integer PRIMARY KEY,
    token  text NOT NULL
);

CREATE INDEX IF NOT EXISTS raw_transactions_timestamp ON raw_transactions ("timestamp");

-- Deletes must carry the whole old row, so the warehouse can take it out of every
-- aggregate it was in.
ALTER TABLE raw_accounts REPLICA IDENTITY FULL;
ALTER TABLE raw_merchants REPLICA IDENTITY FULL;
ALTER TABLE raw_ip_geo REPLICA IDENTITY FULL;
ALTER TABLE raw_fx_rates REPLICA IDENTITY FULL;
ALTER TABLE raw_transactions REPLICA IDENTITY FULL;
ALTER TABLE findemo_canary REPLICA IDENTITY FULL;
