-- The publication Debezium reads through pgoutput. PostgreSQL has no
-- CREATE PUBLICATION IF NOT EXISTS, hence the check.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'findemo_cdc') THEN
        CREATE PUBLICATION findemo_cdc FOR TABLE
            raw_accounts, raw_merchants, raw_ip_geo, raw_fx_rates, raw_transactions,
            findemo_canary;
    END IF;
END
$$;
