//! The whole life of a stack: up, up again, status, down, up (data kept, the
//! pipeline carrying on where it stopped), reset.

use crate::harness::{postgres, rt, Bed};

#[test]
fn up_status_down_up_reset() {
    let bed = Bed::new("life");

    let first = bed.run(&["up"]).success();
    assert!(first.stdout.contains("is up: 4 services ready"), "{first}");
    assert!(
        first.stdout.contains("reached ClickHouse silver"),
        "{first}"
    );
    for service in ["postgres", "kafka", "connect", "clickhouse"] {
        assert!(first.stdout.contains(service), "{first}");
    }
    // Published ports are bound to loopback only.
    assert!(first
        .stdout
        .contains(&format!("127.0.0.1:{}", bed.port("kafka"))));

    bed.run(&["up"])
        .success()
        .stdout_has("is already up: all 4 services ready")
        .stdout_has("nothing to do");

    let status = bed.run(&["status", "--json"]).success();
    let report = status.json();
    assert_eq!(report["healthy"], true, "{status}");
    let services = report["services"].as_array().expect("services");
    assert_eq!(services.len(), 4);
    for s in services {
        assert_eq!(s["state"], "running", "{status}");
        assert_eq!(s["ready"], true, "{status}");
    }
    assert_eq!(report["pipeline"]["state"], "RUNNING", "{status}");
    assert_eq!(report["pipeline"]["tasks"][0], "RUNNING", "{status}");
    let connect = services.iter().find(|s| s["name"] == "connect").unwrap();
    assert!(connect["detail"]
        .as_str()
        .unwrap()
        .contains("io.debezium.connector.postgresql.PostgresConnector"));
    let creds_file = report["credentials_file"]
        .as_str()
        .expect("credentials path");
    let mode = std::fs::metadata(creds_file).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);

    // Data written now must survive down + up.
    rt().block_on(async {
        let pg = postgres(&bed).await;
        pg.batch_execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
            .await
            .expect("write a row");
        let wal: String = pg.query_one("SHOW wal_level", &[]).await.unwrap().get(0);
        assert_eq!(wal, "logical");
    });

    // Changes in flight when the stack stops, and after it comes back, all arrive.
    bed.run(&["generate", "--count", "2000", "--rate", "max", "-q"])
        .success();
    bed.run(&["down"]).success().stdout_has("data kept");
    let down = bed.run(&["status", "--json"]).failure();
    assert_eq!(down.json()["healthy"], false);
    bed.run(&["down"]).success().stdout_has("nothing running");

    let again = bed.run(&["up"]);
    if again.code != Some(0) {
        let logs: Vec<String> = ["connect", "postgres", "kafka"]
            .iter()
            .map(|s| bed.run(&["logs", s, "-n", "60"]).to_string())
            .collect();
        panic!("up after down failed\n{again}\n{}", logs.join("\n"));
    }
    let again = again.stdout_has("is up");
    bed.run(&["generate", "--count", "4000", "--rate", "max", "-q"])
        .success();
    let verify = bed.run(&["verify", "--timeout", "120"]);
    if verify.code != Some(0) {
        let status = bed.run(&["status"]);
        panic!("nothing may be lost across down and up\n{again}\n{verify}\n{status}");
    }
    rt().block_on(async {
        let pg = postgres(&bed).await;
        let v: String = pg
            .query_one("SELECT v FROM kept", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, "still here");
    });

    let logs = bed.run(&["logs", "postgres", "-n", "5"]).success();
    assert!(!logs.stdout.is_empty(), "{logs}");

    // Without --yes and without a terminal, reset refuses and removes nothing.
    bed.run(&["reset"]).failure().stderr_has("--yes");
    assert!(!bed.labelled().is_empty());

    bed.run(&["reset", "--yes"]).success().stdout_has("removed");
    assert_eq!(bed.labelled(), Vec::<String>::new());
    assert!(!bed
        .state_dir()
        .join(format!("{}.credentials.json", bed.stack))
        .exists());
    bed.run(&["status"]).failure().stdout_has("missing");
}

#[test]
fn changed_config_recreates_container_and_keeps_data() {
    let bed = Bed::new("recreate");
    bed.run(&["up"]).success();
    rt().block_on(async {
        let pg = postgres(&bed).await;
        pg.batch_execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
            .await
            .unwrap();
    });
    // A new environment variable changes postgres's spec: up must recreate it.
    let yaml = std::fs::read_to_string(bed.config_path()).unwrap();
    let yaml = yaml.replace(
        "image: findemo-testbed/postgres:15\n",
        "image: findemo-testbed/postgres:15\n    env: {TZ: UTC}\n",
    );
    std::fs::write(bed.config_path(), yaml).unwrap();
    let again = bed.run(&["up"]).success();
    assert!(again.stderr.contains("recreated"), "{again}");
    rt().block_on(async {
        let pg = postgres(&bed).await;
        let v: i32 = pg
            .query_one("SELECT v FROM kept", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, 7);
    });
    bed.run(&["reset", "--yes"]).success();
    assert!(bed.labelled().is_empty());
}
