//! Kafka through rdkafka on the test bed: `status --json` reports the transactions
//! topic's end offset and ClickHouse's consumer group's committed offset and lag,
//! which drains to zero once bronze has the rows; the dashboard's pipeline endpoint
//! carries the same topics.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::dashboard::Dashboard;
use crate::harness::{clickhouse, postgres, rt, Bed};

/// Rows written with plain SQL.
const N: i64 = 2_000;

/// The transactions topic's entry in a `status --json` answer.
fn transactions_topic(status: &Value, stack: &str) -> Value {
    let topic = format!("{stack}.public.raw_transactions");
    status["pipeline"]["topics"]
        .as_array()
        .unwrap_or_else(|| panic!("no pipeline.topics in {status}"))
        .iter()
        .find(|t| t["topic"] == topic.as_str())
        .unwrap_or_else(|| panic!("no topic {topic} in {status}"))
        .clone()
}

#[test]
fn status_and_dashboard_show_offsets_and_lag_draining() {
    let bed = Bed::new("lag");
    let up = bed.run(&["up"]).success();
    assert!(
        up.stdout
            .contains("ClickHouse's consumers have caught up with Kafka."),
        "{up}"
    );

    // Before any row: the topic exists, is empty, and nothing lags.
    let status = bed.run(&["status", "--json"]).success().json();
    let before = transactions_topic(&status, &bed.stack);
    assert_eq!(before["end_offset"], 0, "{before}");
    assert_eq!(before["lag_events"], 0, "{before}");
    assert_eq!(
        before["group"],
        format!("{}-clickhouse-raw_transactions", bed.stack).as_str()
    );

    rt().block_on(async {
        let pg = postgres(&bed).await;
        pg.batch_execute(&format!(
            "INSERT INTO raw_transactions \
             SELECT gen_random_uuid(), 'A' || (i % 50), now(), i / 100.0, 'EUR', \
                    'M' || (i % 7), 'success', '192.0.2.1', 'dev' \
             FROM generate_series(1, {N}) AS i"
        ))
        .await
        .expect("insert rows");
    });

    // Every change reaches the topic, and ClickHouse's group consumes it to the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    let last = loop {
        let status = bed.run(&["status", "--json"]).success().json();
        let topic = transactions_topic(&status, &bed.stack);
        assert!(topic["error"].is_null(), "{topic}");
        let lag = topic["lag_events"].as_i64().expect("lag_events");
        assert!(lag >= 0, "{topic}");
        let end = topic["end_offset"].as_i64().expect("end_offset");
        if end >= N && lag == 0 {
            break topic;
        }
        assert!(
            Instant::now() < deadline,
            "lag did not reach 0 within 120 s: {topic}"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    // Lag 0 because the group committed past every row, not because nothing was read.
    assert!(
        last["committed_offset"].as_i64().expect("committed_offset") >= N,
        "{last}"
    );
    assert_eq!(
        clickhouse(&bed, "SELECT count() FROM bronze.raw_transactions"),
        N.to_string()
    );

    // `--watch --json` adds rates per stage, per topic too, from the second refresh.
    let watch = bed.spawn(&["status", "--watch", "--json"]);
    std::thread::sleep(Duration::from_secs(5));
    // SAFETY: signalling a child this test started.
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    let out = watch.wait_with_output().expect("status --watch output");
    assert!(out.status.success(), "status --watch: {:?}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let second: Value = text
        .lines()
        .nth(1)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("two JSON lines expected: {text}"));
    for field in [
        "postgres_changes_per_sec",
        "kafka_events_per_sec",
        "bronze_events_per_sec",
        "silver_rows_per_sec",
    ] {
        let rate = second["rates"][field].as_f64();
        assert!(rate.is_some_and(|r| r >= 0.0), "{field}: {second}");
    }
    assert!(
        transactions_topic(&second, &bed.stack)["events_per_sec"]
            .as_f64()
            .is_some(),
        "{second}"
    );

    // The dashboard's pipeline view carries the topics with the same figures.
    let dash = Dashboard::start(&bed);
    let (code, view) = dash.get("api/pipeline");
    assert_eq!(code, 200, "{view}");
    let kafka = view["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == "kafka"))
        .unwrap_or_else(|| panic!("no kafka stage in {view}"))
        .clone();
    let topics = kafka["topics"].as_array().expect("kafka topics");
    assert_eq!(topics.len(), 6, "{kafka}");
    let tx = topics
        .iter()
        .find(|t| t["table"] == "raw_transactions")
        .unwrap_or_else(|| panic!("no transactions topic in {kafka}"));
    assert_eq!(tx["end_offset"], last["end_offset"], "{tx}");
    assert_eq!(tx["lag_events"], 0, "{tx}");
    dash.stop();
}
