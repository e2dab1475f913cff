//! Bad input and broken surroundings: each gives a clear error, a non-zero exit, and
//! leaves nothing `reset` cannot remove.

use crate::harness::{Bed, Run};

#[test]
fn malformed_yaml_names_line_and_column() {
    let bed = Bed::new("yaml");
    // An unclosed quote: a syntax error, not a type error.
    std::fs::write(
        bed.config_path(),
        "stack: x\nservices:\n  kafka: {port: \"9092}\n",
    )
    .unwrap();
    let run = bed.run(&["up"]).failure();
    let path = bed.config_path().display().to_string();
    let rest = run
        .stderr
        .split_once(&format!("{path}:"))
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_else(|| panic!("no file name in {run}"));
    let mut place = rest.splitn(3, ':');
    let line: usize = place.next().unwrap().parse().expect("line number");
    let column: usize = place.next().unwrap().parse().expect("column number");
    assert!(line >= 3 && column >= 1, "{run}");
    assert!(bed.labelled().is_empty());
}

#[test]
fn unknown_key_is_rejected_with_its_place() {
    let bed = Bed::new("unknown");
    std::fs::write(
        bed.config_path(),
        "stack: x\nservices:\n  clickhouse:\n    prot: 1\n",
    )
    .unwrap();
    let run = bed.run(&["status"]).failure();
    let path = bed.config_path().display().to_string();
    assert!(run.stderr.contains(&format!("{path}:4:5:")), "{run}");
    assert!(run.stderr.contains("unknown field `prot`"), "{run}");
}

#[test]
fn bad_flag_is_a_usage_error() {
    let bed = Bed::new("flag");
    let run = bed.run(&["up", "--timeout", "soon"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("--timeout"), "{run}");
}

#[test]
fn missing_docker_engine_is_explained() {
    let bed = Bed::new("nodocker");
    let mut cmd = bed.command(&["up"]);
    cmd.env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    Run::of(cmd)
        .failure()
        .stderr_has("cannot reach the Docker engine at unix:///nonexistent/docker.sock")
        .stderr_has("DOCKER_HOST");
}

#[test]
fn taken_port_names_port_and_service() {
    let bed = Bed::new("port");
    let _holder = std::net::TcpListener::bind(("127.0.0.1", bed.port("clickhouse"))).unwrap();
    let run = bed.run(&["up"]).failure();
    assert!(
        run.stderr.contains(&format!(
            "port {} on 127.0.0.1 is already in use",
            bed.port("clickhouse")
        )),
        "{run}"
    );
    assert!(run.stderr.contains("services.clickhouse.port"), "{run}");
    // Nothing was started; only the credentials file may exist, and reset removes it.
    assert!(bed.labelled().is_empty(), "{:?}", bed.labelled());
    bed.run(&["reset", "--yes"]).success();
}

#[test]
fn unpullable_image_fails_cleanly() {
    let bed = Bed::new("pull");
    let yaml = std::fs::read_to_string(bed.config_path()).unwrap().replace(
        "findemo-testbed/kafka:tansu-0.6.0",
        "findemo-testbed/no-such-image:0.0.1",
    );
    std::fs::write(bed.config_path(), yaml).unwrap();
    let run = bed.run(&["up"]).failure();
    assert!(
        run.stderr
            .contains("cannot pull image findemo-testbed/no-such-image:0.0.1"),
        "{run}"
    );
    bed.run(&["reset", "--yes"]).success();
    assert!(bed.labelled().is_empty());
}

#[test]
fn service_that_never_becomes_ready_is_named_with_its_logs() {
    // A PostgreSQL server where ClickHouse should be: it runs, but never answers /ping.
    let bed = Bed::new("notready");
    let yaml = std::fs::read_to_string(bed.config_path()).unwrap().replace(
        "image: findemo-testbed/clickhouse:18.16\n",
        "image: findemo-testbed/postgres:15\n    env: {POSTGRES_PASSWORD: x}\n",
    );
    std::fs::write(bed.config_path(), yaml).unwrap();
    let run = bed.run(&["up", "--timeout", "8"]).failure();
    assert!(
        run.stderr
            .contains("clickhouse did not become ready within 8s"),
        "{run}"
    );
    assert!(run.stderr.contains("Last log lines of"), "{run}");
    assert!(run.stderr.contains("findemo logs clickhouse"), "{run}");
    bed.run(&["reset", "--yes"]).success();
    assert!(bed.labelled().is_empty());
}

#[test]
fn service_that_exits_is_reported_at_once() {
    // The PostgreSQL image without a password exits at start, as the official one does.
    let bed = Bed::new("exits");
    let yaml = std::fs::read_to_string(bed.config_path()).unwrap().replace(
        "image: findemo-testbed/clickhouse:18.16\n",
        "image: findemo-testbed/postgres:15\n",
    );
    std::fs::write(bed.config_path(), yaml).unwrap();
    let run = bed.run(&["up"]).failure();
    assert!(
        run.stderr
            .contains("clickhouse's container stopped while starting"),
        "{run}"
    );
    assert!(run.stderr.contains("POSTGRES_PASSWORD"), "{run}");
    bed.run(&["reset", "--yes"]).success();
    assert!(bed.labelled().is_empty());
}
