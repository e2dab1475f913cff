//! `findemo bench` on a real stack: freshness figures that make sense, `--max-p95`
//! failing a run with its reason, a short throughput run that sustains a rate, and
//! `status --json` carrying freshness on one clock.

use crate::harness::Bed;

#[test]
fn bench_measures_freshness_and_throughput() {
    let bed = Bed::new("bench");
    bed.run(&["up"]).success();

    let run = bed
        .run(&[
            "bench",
            "freshness",
            "--rate",
            "200",
            "--duration",
            "10",
            "--json",
        ])
        .success();
    let json = run.json();
    let total = &json["commit_to_silver"];
    let figure = |name: &str| {
        total[name]
            .as_f64()
            .unwrap_or_else(|| panic!("no {name}\n{run}"))
    };
    assert!(total["count"].as_u64().unwrap_or(0) > 0, "{run}");
    let (p50, p95, max) = (figure("p50_ms"), figure("p95_ms"), figure("max_ms"));
    assert!(p50 > 0.0 && p50 <= p95 && p95 <= max, "{run}");
    assert!(figure("p99_ms") <= max, "{run}");
    assert!(
        json["achieved_rate_per_sec"].as_f64().unwrap_or(0.0) > 0.0,
        "{run}"
    );
    assert!(
        json["commit_to_kafka"]["count"].as_u64().unwrap_or(0) > 0,
        "{run}"
    );
    assert!(json["clock"]
        .as_str()
        .unwrap_or("")
        .contains("findemo's monotonic clock"));

    let run = bed
        .run(&[
            "bench",
            "freshness",
            "--rate",
            "200",
            "--duration",
            "2",
            "--max-p95",
            "1",
        ])
        .failure()
        .stderr_has("is above --max-p95 1 ms");
    assert_eq!(run.code, Some(1), "{run}");
    run.stdout_has("commit -> visible in silver");

    let run = bed
        .run(&[
            "bench",
            "throughput",
            "--start",
            "100",
            "--step",
            "100",
            "--max-rate",
            "200",
            "--step-duration",
            "30s",
            "--json",
        ])
        .success();
    let json = run.json();
    let sustained = json["sustained_rate_per_sec"].as_u64().unwrap_or(0);
    assert!(sustained > 0, "{run}");
    assert!(
        !json["steps"].as_array().expect("steps").is_empty(),
        "{run}"
    );

    let run = bed.run(&["status", "--json"]).success();
    let json = run.json();
    assert!(
        json["pipeline"]["freshness_secs"].as_f64().is_some(),
        "{run}"
    );
    assert!(
        json["freshness_clock"]
            .as_str()
            .unwrap_or("")
            .starts_with("PostgreSQL's"),
        "{run}"
    );

    bed.run(&["reset", "--yes"]).success();
}
