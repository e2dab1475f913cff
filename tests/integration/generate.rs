//! `findemo generate` on a real stack: reproducible, resumable and shaped by the pools;
//! exact after a PostgreSQL restart and after SIGKILL; clear about bad input.

use std::time::{Duration, Instant};

use crate::harness::{docker, pg_query as query, postgres, rt, Bed};

/// Every column of every transaction, as one fingerprint.
const FINGERPRINT: &str =
    "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY transaction_id)), '') FROM raw_transactions t";

fn execute(bed: &Bed, sql: &str) {
    rt().block_on(async { postgres(bed).await.batch_execute(sql).await.unwrap() })
}

/// Forgets the generated transactions, as a fresh database would have none.
fn forget_transactions(bed: &Bed) {
    execute(
        bed,
        "DELETE FROM raw_transactions; DELETE FROM findemo_generator_progress",
    );
}

/// Waits until seed 11 has at least `rows` committed transactions: the run is under way.
fn wait_for_progress(bed: &Bed, rows: i64) {
    let started = Instant::now();
    let sql = "SELECT coalesce(max(next_seq), 0) FROM findemo_generator_progress WHERE seed = 11";
    while query::<i64>(bed, sql) < rows {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The number after `label` in a summary such as "inserted 1,234 · updated 56".
fn summary_number(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"));
    text[at + label.len()..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?} in {text}"))
}

#[test]
fn bad_input_is_refused_clearly() {
    // Bad flags and a bad `generator:` section are refused before anything runs: the
    // unit tests of cli.rs and config/generator.rs check each case.
    let bed = Bed::new("genbad");

    // No `up` yet: no credentials.
    bed.run(&["generate", "--count", "10"])
        .failure()
        .stderr_has("run `findemo up` first");

    // Credentials, but nothing listening on the stack's PostgreSQL port.
    std::fs::create_dir_all(bed.state_dir()).unwrap();
    let creds = serde_json::json!({
        "postgres_user": "findemo", "postgres_password": "x",
        "clickhouse_user": "findemo", "clickhouse_password": "x",
        "kafka_cluster_id": "AAAAAAAAAAAAAAAAAAAAAA"
    });
    std::fs::write(
        bed.state_dir()
            .join(format!("{}.credentials.json", bed.stack)),
        creds.to_string(),
    )
    .unwrap();
    let started = Instant::now();
    bed.run(&["generate", "--count", "10"])
        .failure()
        .stderr_has(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{}",
            bed.port("postgres")
        ));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn same_seed_same_rows_resumable_and_within_the_pools() {
    let bed = Bed::new("gen");
    bed.run(&["up"]).success();
    bed.configure("generator:\n  settle_after: 200\n  delete_after: 400\n  delete_share: 0.02\n");
    let args = |count: &'static str| {
        [
            "generate",
            "--seed",
            "7",
            "--start",
            "2025-03-01",
            "--rate",
            "max",
            "--accounts",
            "300",
            "--merchants",
            "12",
            "--ips",
            "200",
            "--count",
            count,
        ]
    };

    // In two runs: 1,500, then on to 4,000.
    let first = bed.run(&args("1500")).success();
    assert_eq!(summary_number(&first.stdout, "inserted"), 1_500, "{first}");
    let second = bed.run(&args("4000")).success();
    assert!(
        second.stderr.contains("1,500 transactions already written"),
        "{second}"
    );
    assert_eq!(
        summary_number(&second.stdout, "inserted"),
        2_500,
        "{second}"
    );
    let resumed = query::<String>(&bed, FINGERPRINT);

    // Reference data is the pools, exactly; a re-run adds nothing.
    let reference = "SELECT (SELECT count(*) FROM raw_accounts) * 1000000 \
                     + (SELECT count(*) FROM raw_merchants) * 10000 + (SELECT count(*) FROM raw_ip_geo)";
    assert_eq!(
        query::<i64>(&bed, reference),
        300_000_000 + 12 * 10_000 + 200
    );
    assert_eq!(
        query::<i64>(&bed, "SELECT count(*) FROM raw_fx_rates"),
        365 * 3
    );
    assert_eq!(
        query::<i64>(
            &bed,
            "SELECT count(*) FROM raw_fx_rates WHERE currency = 'EUR' AND rate_to_eur <> 1"
        ),
        0
    );
    let again = bed.run(&args("4000")).success();
    assert!(again.stdout.contains("nothing to do"), "{again}");
    assert!(again.stderr.contains("all present"), "{again}");
    assert_eq!(query::<String>(&bed, FINGERPRINT), resumed);

    // Every row within the schema and the pools.
    let outside = "SELECT count(*) FROM raw_transactions t \
        LEFT JOIN raw_accounts a USING (account_id) \
        LEFT JOIN raw_merchants m USING (merchant_id) \
        LEFT JOIN raw_ip_geo g USING (ip) \
        LEFT JOIN raw_fx_rates f ON f.date = t.\"timestamp\"::date AND f.currency = t.currency \
        WHERE a.account_id IS NULL OR m.merchant_id IS NULL OR g.ip IS NULL \
           OR f.date IS NULL OR t.amount <= 0 OR t.device_id !~ '^dev-[0-9a-f]{12}$' \
           OR t.\"timestamp\" < '2025-03-01'";
    assert_eq!(query::<i64>(&bed, outside), 0);

    // Updates and deletes at the configured shares (binomial bounds, about 4 sigma).
    let rows = query::<i64>(&bed, "SELECT count(*) FROM raw_transactions");
    let deleted = 4_000 - rows;
    // 2% of the 3,600 transactions old enough to be deleted: 72.
    assert!((40..=110).contains(&deleted), "deleted {deleted}");
    let updated =
        summary_number(&first.stdout, "updated") + summary_number(&second.stdout, "updated");
    // 5% of the 3,800 transactions old enough to settle: 190.
    assert!((130..=250).contains(&updated), "updated {updated}");
    let pending = query::<i64>(
        &bed,
        "SELECT count(*) FROM raw_transactions WHERE status = 'pending'",
    );
    // Only the newest 200 may still be pending: about 10.
    assert!(pending <= 30, "pending {pending}");
    let failed = query::<i64>(
        &bed,
        "SELECT count(*) FROM raw_transactions WHERE status = 'failed'",
    );
    let failed_share = failed as f64 / rows as f64;
    assert!(
        (0.035..0.075).contains(&failed_share),
        "failed {failed_share}"
    );

    // From scratch, in one run: the same rows, every column.
    forget_transactions(&bed);
    bed.run(&args("4000")).success();
    assert_eq!(query::<String>(&bed, FINGERPRINT), resumed);

    // Another seed: other transactions.
    let other = bed
        .run(&["generate", "--seed", "8", "--rate", "max", "--count", "100"])
        .success();
    assert!(other.stdout.contains("Seed 8"), "{other}");
    assert_eq!(
        query::<i64>(&bed, "SELECT count(*) FROM findemo_generator_progress"),
        2
    );
    assert!(query::<i64>(&bed, "SELECT count(*) FROM raw_transactions") > rows);

    bed.run(&["reset", "--yes"]).success();
}

#[test]
fn exact_after_postgres_restart_and_after_sigkill() {
    let bed = Bed::new("gencrash");
    bed.run(&["up"]).success();
    let args = [
        "generate",
        "--seed",
        "11",
        "--start",
        "2025-03-01",
        "--rate",
        "2500",
        "--count",
        "10000",
    ];

    // Reference: an undisturbed run.
    bed.run(&args).success();
    let clean = query::<String>(&bed, FINGERPRINT);
    let clean_rows = query::<i64>(&bed, "SELECT count(*) FROM raw_transactions");
    assert!(clean_rows > 9_800 && clean_rows < 10_000, "{clean_rows}");

    // PostgreSQL restarts in the middle of a run: the run retries and completes.
    forget_transactions(&bed);
    let child = bed.spawn(&args);
    wait_for_progress(&bed, 1_000);
    rt().block_on(async {
        docker()
            .restart_container(
                &format!("{}-postgres", bed.stack),
                Some(bollard::query_parameters::RestartContainerOptions {
                    t: Some(10),
                    signal: None,
                }),
            )
            .await
            .expect("restart postgres");
    });
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        summary_number(&stdout, "retries") >= 1,
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("PostgreSQL is back"), "{stderr}");
    assert_eq!(query::<String>(&bed, FINGERPRINT), clean);

    // SIGKILL in the middle of a run, then the same command again.
    forget_transactions(&bed);
    let mut child = bed.spawn(&args);
    wait_for_progress(&bed, 2_000);
    child.kill().unwrap();
    child.wait().unwrap();
    let written = query::<i64>(&bed, "SELECT next_seq FROM findemo_generator_progress");
    assert!(written > 0 && written < 10_000, "{written}");
    let rerun = bed.run(&args).success();
    assert_eq!(
        summary_number(&rerun.stdout, "inserted"),
        10_000 - written as u64,
        "{rerun}"
    );
    assert_eq!(query::<String>(&bed, FINGERPRINT), clean);
    assert_eq!(
        query::<i64>(&bed, "SELECT count(*) FROM raw_transactions"),
        clean_rows
    );

    bed.run(&["reset", "--yes"]).success();
}
