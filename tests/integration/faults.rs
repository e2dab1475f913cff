//! Services restarted in the middle of a stream, on the test bed's broker that keeps
//! Kafka's promises (tests/testbed/conformance.sh): the broker keeps its topics,
//! records and offsets on its volume. Each ends with `verify` green and no transaction
//! missing or duplicated in silver.

use std::time::{Duration, Instant};

use crate::harness::{clickhouse, pg_query, rt, Bed};

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

/// `generate` at 2,000/s; a few seconds in, one service is stopped: `status` must
/// say the stack is not healthy and name that service as the broken stage; it then
/// starts again.
/// Then `up` as a user would (findemo's answer when a stage was left stuck), `verify`
/// green and silver exactly the source's transactions.
fn restart_mid_stream(service: &str) {
    let bed = Bed::new(&format!("fault-{service}"));
    bed.run(&["up"]).success();
    let count = COUNT.to_string();
    let generate = ["generate", "--rate", "2000", "--count", &count, "-q"];
    let generator = bed.spawn(&generate);
    wait_for_rows(&bed, 8_000);
    let container = format!("{}-{service}", bed.stack);
    docker_cli(&["stop", "-t", "10", &container]);
    let status = bed.run(&["status", "--json"]).failure();
    let report = status.json();
    assert_eq!(report["healthy"], false, "{status}");
    let stopped = report["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == service))
        .unwrap_or_else(|| panic!("no {service} in status\n{status}"));
    assert_eq!(stopped["ready"], false, "{status}");
    assert_eq!(stopped["detail"], "not running", "{status}");
    assert_eq!(report["broken"]["stage"], service, "{status}");
    docker_cli(&["start", &container]);

    // The generator may give up while PostgreSQL is away; run again, it finishes
    // the seed's count without writing a transaction twice.
    let ended = generator.wait_with_output().expect("generate");
    if !ended.status.success() {
        eprintln!(
            "generate ended with {} while {service} was stopped: running it again\n{}",
            ended.status,
            String::from_utf8_lossy(&ended.stderr)
        );
        bed.run(&generate).success();
    }
    bed.run(&["up"]).success();
    verify_exact(&bed, service);
}

/// `verify` green (else the status and the service's logs), and silver holding each
/// of the source's transactions exactly once.
fn verify_exact(bed: &Bed, service: &str) {
    let verify = bed.run(&["verify", "--timeout", "240"]);
    if verify.code != Some(0) {
        let status = bed.run(&["status"]);
        let logs = bed.run(&["logs", service, "-n", "40"]);
        panic!("nothing may be lost\n{verify}\n{status}\n{logs}");
    }
    let source: i64 = pg_query(bed, "SELECT count(*) FROM raw_transactions");
    let silver = clickhouse(
        bed,
        "SELECT toString(count()), toString(uniqExact(transaction_id)) \
         FROM silver.transactions_current FORMAT TSV",
    );
    assert_eq!(silver, format!("{source}\t{source}"), "silver vs source");
}

/// `docker ARGS`, which must succeed.
fn docker_cli(args: &[&str]) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
}

/// Connect's producer gets an error from tansu while it shuts down and Connect stops
/// the task for good (still calling it RUNNING); `up` sees the slot standing still
/// behind its canary and restarts the task.
#[test]
fn broker_restarted_mid_stream_loses_nothing_after_up() {
    restart_mid_stream("kafka");
}

/// ClickHouse stops without leaving its consumer groups and is back before the broker
/// expires them: a consumer can be left without partitions (README, test bed limits).
/// `up` sees a group standing still with events left and restarts ClickHouse after
/// the old members' expiry.
#[test]
fn clickhouse_restarted_mid_stream_loses_nothing_after_up() {
    restart_mid_stream("clickhouse");
}

/// PostgreSQL stops under the generator: Debezium's replication connection breaks and
/// resumes from the slot.
#[test]
fn postgres_restarted_mid_stream_loses_nothing_after_up() {
    restart_mid_stream("postgres");
}

/// Three faults a user makes by hand, on one stream: the generator killed with SIGKILL
/// and run again (it continues where its committed rows end), `up` run again while
/// rows flow (it changes nothing), and the connector deleted through Connect's REST API
/// (`status` says so; `up` registers it again and Debezium resumes from its offsets).
#[test]
fn generator_killed_up_rerun_and_connector_deleted_mid_stream() {
    let bed = Bed::new("fault-hand");
    bed.run(&["up"]).success();
    let count = COUNT.to_string();
    let generate = ["generate", "--rate", "2000", "--count", &count, "-q"];

    let mut generator = bed.spawn(&generate);
    wait_for_rows(&bed, 6_000);
    generator.kill().expect("SIGKILL the generator");
    let killed = generator.wait().expect("reap the generator");
    assert!(!killed.success(), "{killed}");
    let mut generator = bed.spawn(&generate);
    wait_for_rows(&bed, 14_000);

    bed.run(&["up"])
        .success()
        .stdout_has("is already up")
        .stdout_has("nothing to do");

    let connector = format!("{}-postgres-source", bed.stack);
    let url = format!(
        "http://127.0.0.1:{}/connectors/{connector}",
        bed.port("connect")
    );
    let deleted = rt().block_on(async { crate::harness::http_client().delete(&url).send().await });
    let deleted = deleted.expect("DELETE the connector");
    assert!(deleted.status().is_success(), "{deleted:?}");
    // Distributed Connect removes it once its herder has read the deletion back from
    // the config topic: a moment later.
    let began = Instant::now();
    let status = loop {
        let status = bed.run(&["status", "--json"]);
        if status.code == Some(1) && status.json()["pipeline"]["state"] == "not registered" {
            break status;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "status never said the connector is gone\n{status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(status.json()["broken"]["stage"], "connector", "{status}");

    let again = bed.run(&["up"]).success();
    assert!(!again.stdout.contains("nothing to do"), "{again}");
    let ended = generator.wait().expect("generate");
    assert!(ended.success(), "generate ended with {ended}");
    verify_exact(&bed, "connect");
}
