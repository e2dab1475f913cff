//! Services restarted in the middle of a stream, on the test bed's broker that keeps
//! Kafka's promises (tests/testbed/conformance.sh): the broker keeps its topics,
//! records and offsets on its volume. Each ends with `verify` green and no transaction
//! missing or duplicated in silver.
//!
//! A ClickHouse restart is not here yet: under load, one of its Kafka tables' consumers
//! stayed at a block boundary for minutes in 2 of 4 runs (README, test bed limits).

use std::time::{Duration, Instant};

use crate::harness::{clickhouse, pg_query, Bed};

const COUNT: i64 = 40_000;

/// Waits until the generator has committed at least `rows` transactions.
fn wait_for_rows(bed: &Bed, rows: i64) {
    let started = Instant::now();
    while pg_query::<i64>(bed, "SELECT count(*) FROM raw_transactions") < rows {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the generator did not reach {rows} transactions"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `generate` at 2,000/s, `docker restart` of one service a few seconds in, then `up`
/// as a user would (findemo's answer when Connect's task died under the broker; it
/// cannot bring back an event a consumer skipped, so `verify` still tells), then
/// `verify` green and silver exactly the source's transactions.
fn restart_mid_stream(service: &str) {
    let bed = Bed::new(&format!("fault-{service}"));
    bed.run(&["up"]).success();
    let count = COUNT.to_string();
    let mut generate = bed.spawn(&["generate", "--rate", "2000", "--count", &count]);
    wait_for_rows(&bed, 8_000);
    let container = format!("{}-{service}", bed.stack);
    let restart = std::process::Command::new("docker")
        .args(["restart", "-t", "10", &container])
        .output()
        .expect("docker restart");
    assert!(restart.status.success(), "{restart:?}");
    let status = generate.wait().expect("generate");
    assert!(status.success(), "generate ended with {status}");
    bed.run(&["up"]).success();

    let verify = bed.run(&["verify", "--timeout", "240"]);
    if verify.code != Some(0) {
        let status = bed.run(&["status"]);
        let logs = bed.run(&["logs", service, "-n", "40"]);
        panic!("nothing may be lost\n{verify}\n{status}\n{logs}");
    }
    let source: i64 = pg_query(&bed, "SELECT count(*) FROM raw_transactions");
    let silver = clickhouse(
        &bed,
        "SELECT toString(count()), toString(uniqExact(transaction_id)) \
         FROM silver.transactions_current FORMAT TSV",
    );
    assert_eq!(silver, format!("{source}\t{source}"), "silver vs source");
}

/// Connect's producer gets an error from tansu while it shuts down and Connect stops
/// the task for good (still calling it RUNNING); `up` sees the slot standing still
/// behind its canary and restarts the task.
#[test]
fn broker_restarted_mid_stream_loses_nothing_after_up() {
    restart_mid_stream("kafka");
}
