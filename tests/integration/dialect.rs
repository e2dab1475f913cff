//! The ClickHouse SQL files on a current ClickHouse release (chdb, in-process), with
//! the gold views checked over sample change events. The test bed's ClickHouse 18.16
//! runs the same files in the pipeline tests.

use std::path::PathBuf;
use std::process::Command;

/// The Python with chdb that tests/test.sh installs.
fn chdb_python() -> PathBuf {
    match std::env::var_os("FINDEMO_CHDB_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from("/var/cache/findemo-testbed/chdb-venv/bin/python"),
    }
}

#[test]
fn clickhouse_sql_runs_on_a_current_release() {
    let python = chdb_python();
    assert!(
        python.exists(),
        "{} is missing: tests/test.sh installs chdb there",
        python.display()
    );
    let out = Command::new(&python)
        .arg("tests/dialect/check_current.py")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run the chdb check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all checks passed on ClickHouse"), "{text}");
}
