//! The CDC pipeline end to end on the test bed: changes written with plain SQL in
//! PostgreSQL reach ClickHouse's silver and gold exactly, and `verify` proves it.

use crate::harness::{clickhouse, postgres, rt, Bed};

const SETUP: &str = "
    INSERT INTO raw_fx_rates VALUES ('2024-05-01', 'EUR', 1), ('2024-05-01', 'USD', 0.93),
        ('2024-05-02', 'EUR', 1), ('2024-05-02', 'GBP', 1.17);
    INSERT INTO raw_accounts VALUES ('A1', 'Ann', 'ann@example.test', 'DE', '2024-01-02'),
        ('A2', 'Bob', 'bob@example.test', 'FR', '2024-02-03');
    INSERT INTO raw_merchants VALUES ('M1', 'Corner Shop', 'Retail', 'DE', 2),
        ('M2', 'Jet Travel', 'Travel', 'GB', 4);
    INSERT INTO raw_ip_geo VALUES ('192.0.2.1', 'DE', 'Berlin', false),
        ('198.51.100.7', 'NL', 'Amsterdam', true);
    INSERT INTO raw_transactions VALUES
        ('11111111-1111-4111-8111-111111111111', 'A1', '2024-05-01 10:00:00.123456', 123.45, 'USD', 'M1', 'pending', '192.0.2.1', 'dev-1'),
        ('22222222-2222-4222-8222-222222222222', 'A1', '2024-05-01 11:30:00', 0.01, 'EUR', 'M2', 'success', '198.51.100.7', 'dev-2'),
        ('33333333-3333-4333-8333-333333333333', 'A2', '2024-05-02 09:15:00', 99999.99, 'GBP', 'M2', 'success', '192.0.2.1', 'dev-3'),
        ('44444444-4444-4444-8444-444444444444', 'A2', '2024-05-02 23:59:59.999999', 10.10, 'EUR', 'M1', 'failed', '192.0.2.1', 'dev-3');
";

const CHANGES: &str = "
    UPDATE raw_transactions SET status = 'failed' WHERE transaction_id = '11111111-1111-4111-8111-111111111111';
    UPDATE raw_transactions SET status = 'success', amount = 120.00 WHERE transaction_id = '11111111-1111-4111-8111-111111111111';
    DELETE FROM raw_transactions WHERE transaction_id = '44444444-4444-4444-8444-444444444444';
    DELETE FROM raw_accounts WHERE account_id = 'A2';
";

#[test]
fn changes_reach_silver_and_gold_exactly() {
    let bed = Bed::new("cdc");
    let up = bed.run(&["up"]).success();
    assert!(up.stdout.contains("reached ClickHouse silver in"), "{up}");

    rt().block_on(async {
        let pg = postgres(&bed).await;
        pg.batch_execute(SETUP).await.expect("insert rows");
        pg.batch_execute(CHANGES)
            .await
            .expect("update and delete rows");
    });

    let verify = bed.run(&["verify", "--timeout", "90"]).success();
    assert!(verify.stdout.contains("Verified"), "{verify}");
    let json = bed.run(&["verify", "--json"]).success().json();
    assert_eq!(json["agree"], true);
    assert_eq!(json["days"].as_array().unwrap().len(), 2, "{json}");

    // A row updated twice keeps only its last version, money exact.
    assert_eq!(
        clickhouse(
            &bed,
            "SELECT status, toString(amount) FROM silver.transactions_current \
             WHERE transaction_id = toUUID('11111111-1111-4111-8111-111111111111') FORMAT TSV"
        ),
        "success\t120.00"
    );
    assert_eq!(
        clickhouse(
            &bed,
            "SELECT toString(amount) FROM silver.transactions_current \
             WHERE transaction_id = toUUID('33333333-3333-4333-8333-333333333333')"
        ),
        "99999.99"
    );
    // A deleted row is gone from silver and from gold's totals.
    assert_eq!(
        clickhouse(
            &bed,
            "SELECT count() FROM silver.transactions_current \
             WHERE transaction_id = toUUID('44444444-4444-4444-8444-444444444444')"
        ),
        "0"
    );
    assert_eq!(
        clickhouse(
            &bed,
            "SELECT transactions, toString(amount_sum) FROM gold.daily_kpis \
             WHERE day = '2024-05-02' FORMAT TSV"
        ),
        "1\t99999.99"
    );
    assert_eq!(
        clickhouse(&bed, "SELECT count() FROM silver.accounts_current"),
        "1"
    );
    // Every change is versioned by its LSN: the Kafka engine fills a field missing from
    // the events with 0 without a word, so check that none is.
    assert_eq!(
        clickhouse(&bed, "SELECT countIf(version = 0) FROM silver.transactions"),
        "0"
    );
    // Bronze keeps every change event: 4 inserts + 2 updates + 1 delete.
    assert_eq!(
        clickhouse(&bed, "SELECT count() FROM bronze.raw_transactions"),
        "7"
    );
    // EUR at the day's rate: 120.00 * 0.93 + 0.01 * 1 on 2024-05-01.
    assert_eq!(
        clickhouse(
            &bed,
            "SELECT toString(total_eur) FROM gold.daily_kpis WHERE day = '2024-05-01'"
        ),
        "111.61000000"
    );

    // Generated data (inserts, settling updates, deletes) arrives whole too.
    bed.run(&[
        "generate", "--rate", "max", "--count", "5000", "--seed", "3",
    ])
    .success();
    bed.run(&["verify", "--timeout", "120"])
        .success()
        .stdout_has("Verified");

    // Running up again changes nothing and registers nothing twice.
    let again = bed.run(&["up"]).success();
    assert!(again.stdout.contains("nothing to do"), "{again}");
    let dry = bed.run(&["up", "--dry-run"]).success();
    assert!(
        dry.stdout.contains("every SQL file already applied"),
        "{dry}"
    );
    assert!(dry.stdout.contains("connector: unchanged"), "{dry}");

    // A broken SQL file is named with its statement, and changes nothing before it.
    let files = bed.dir.path().join("pipeline");
    copy_pipeline_files(&files);
    std::fs::write(
        files.join("sql/clickhouse/0999_broken.sql"),
        "-- a file with a typo\nCREATE VIEW IF NOT EXISTS gold.broken AS SELEC 1;\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(bed.config_path())
        .unwrap()
        .replacen(
            "pipeline:\n",
            &format!("pipeline:\n  files: {}\n", files.display()),
            1,
        );
    std::fs::write(bed.config_path(), config).unwrap();
    let applied = clickhouse(&bed, "SELECT count() FROM findemo_meta.migrations");
    let broken = bed.run(&["up"]).failure();
    assert!(broken.stderr.contains("0999_broken.sql:2:"), "{broken}");
    assert!(
        broken
            .stderr
            .contains("statement 1 (CREATE VIEW IF NOT EXISTS gold.broken"),
        "{broken}"
    );
    assert_eq!(clickhouse(&bed, "EXISTS TABLE gold.broken"), "0");
    assert_eq!(
        clickhouse(&bed, "SELECT count() FROM findemo_meta.migrations"),
        applied,
        "the broken file was recorded as applied"
    );
    std::fs::remove_file(files.join("sql/clickhouse/0999_broken.sql")).unwrap();

    // An applied file that changed is reported, not skipped and not re-run.
    let gold = files.join("sql/clickhouse/0003_gold.sql");
    let original = std::fs::read_to_string(&gold).unwrap();
    std::fs::write(&gold, format!("{original}\n-- edited later\n")).unwrap();
    let changed = bed.run(&["up"]).failure();
    assert!(
        changed
            .stderr
            .contains("sql/clickhouse/0003_gold.sql was changed after it was applied"),
        "{changed}"
    );
    std::fs::write(&gold, original).unwrap();
    bed.run(&["up"]).success().stdout_has("nothing to do");

    // A malformed connector file is named, and the running connector is left alone.
    let connector = files.join("connectors/postgres-source.json");
    std::fs::write(&connector, "{ \"connector.class\": ").unwrap();
    let bad = bed.run(&["up"]).failure();
    assert!(
        bad.stderr.contains("postgres-source.json: not valid JSON"),
        "{bad}"
    );
    let status = bed.run(&["status", "--json"]).json();
    assert_eq!(status["pipeline"]["state"], "RUNNING", "{status}");
    // ... and still streams: a row written now reaches silver.
    rt().block_on(async {
        postgres(&bed)
            .await
            .batch_execute(
                "INSERT INTO raw_transactions VALUES ('55555555-5555-4555-8555-555555555555', \
                 'ACC000001', '2024-05-03 10:00:00+00', 1.00, 'EUR', 'MER0001', 'success', \
                 '192.0.2.5', 'dev-5')",
            )
            .await
            .expect("insert a row");
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while clickhouse(
        &bed,
        "SELECT count() FROM silver.transactions_current \
         WHERE transaction_id = toUUID('55555555-5555-4555-8555-555555555555')",
    ) != "1"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "a row written after the failed up never reached silver"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }

    bed.run(&["reset", "--yes"]).success();
    assert!(bed.labelled().is_empty());
}

fn copy_pipeline_files(to: &std::path::Path) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["sql/postgres", "sql/clickhouse", "connectors"] {
        std::fs::create_dir_all(to.join(dir)).unwrap();
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(dir).join(entry.file_name())).unwrap();
        }
    }
}
