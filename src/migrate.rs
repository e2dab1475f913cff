//! SQL files applied in order, once, with a checksum: the sqlx migrator's model.
//!
//! The files live in `sql/postgres/` and `sql/clickhouse/` and are compiled into the
//! binary, so `findemo` works from any directory. A file is known by its version, the
//! number its name starts with, so renaming `0003_gold.sql` to `0003_kpis.sql` applies
//! nothing again. Each applied file is recorded in the database it was applied to; a
//! file changed after it was applied, two files with one number, and an applied file
//! that is gone are reported, never silently skipped or re-run.
//!
//! This module decides what to apply; [`postgres`] and [`clickhouse`] read each
//! database's records ([`Records`]) and run and record a file there (`apply`).

pub mod clickhouse;
pub mod cluster;
pub mod postgres;

use std::collections::BTreeMap;
use std::path::Path;

/// One SQL file.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// Path shown in messages and recorded as applied, e.g. `sql/postgres/0001_tables.sql`.
    pub path: String,
    pub sql: String,
}

/// The files that define a pipeline: the built-in ones, or a folder of the user's.
#[derive(Debug, Clone)]
pub struct PipelineFiles {
    pub postgres: Vec<Migration>,
    pub clickhouse: Vec<Migration>,
    /// The Debezium connector configuration (JSON with placeholders).
    pub connector: Migration,
}

macro_rules! builtin {
    ($($path:literal),* $(,)?) => {
        vec![$(Migration {
            path: $path.to_string(),
            sql: include_str!(concat!("../", $path)).to_string(),
        }),*]
    };
}

impl PipelineFiles {
    /// The files compiled into the binary. A unit test checks these lists against the
    /// folders.
    pub fn builtin() -> PipelineFiles {
        PipelineFiles {
            postgres: builtin![
                "sql/postgres/0001_tables.sql",
                "sql/postgres/0002_publication.sql",
            ],
            clickhouse: builtin![
                "sql/clickhouse/0001_bronze.sql",
                "sql/clickhouse/0002_silver.sql",
                "sql/clickhouse/0003_gold.sql",
                "sql/clickhouse/0004_dashboard.sql",
                "sql/clickhouse/0005_by_account.sql",
                "sql/clickhouse/0006_views_beside_kafka.sql",
            ],
            connector: builtin!["connectors/postgres-source.json"].remove(0),
        }
    }

    /// Reads `DIR/sql/postgres/*.sql`, `DIR/sql/clickhouse/*.sql` (in file-name order)
    /// and `DIR/connectors/postgres-source.json`. Files keep their paths relative to
    /// DIR, so a folder holding the built-in files is recognised as already applied.
    pub fn from_dir(dir: &Path) -> Result<PipelineFiles, MigrateError> {
        Ok(PipelineFiles {
            postgres: read_sql_dir(dir, "sql/postgres")?,
            clickhouse: read_sql_dir(dir, "sql/clickhouse")?,
            connector: read_file(dir, "connectors/postgres-source.json")?,
        })
    }
}

fn read_file(dir: &Path, relative: &str) -> Result<Migration, MigrateError> {
    let full = dir.join(relative);
    let sql = std::fs::read_to_string(&full).map_err(|e| MigrateError::Read {
        path: full.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Migration {
        path: relative.to_string(),
        sql,
    })
}

fn read_sql_dir(dir: &Path, relative: &str) -> Result<Vec<Migration>, MigrateError> {
    let full = dir.join(relative);
    let entries = std::fs::read_dir(&full).map_err(|e| MigrateError::Read {
        path: full.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    let files: Vec<Migration> = names
        .iter()
        .map(|name| read_file(dir, &format!("{relative}/{name}")))
        .collect::<Result<_, _>>()?;
    versions(&files)?;
    Ok(files)
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MigrateError {
    #[error(
        "{path} was changed after it was applied (recorded checksum {recorded}, file now {now}).\n\
         Applied SQL files must not change: put the change in a new file, or start clean with `findemo reset`."
    )]
    Changed {
        path: String,
        recorded: String,
        now: String,
    },
    #[error(
        "{path} and {other} have the same number {version}: each SQL file needs its own.\n\
         Renumber the newer one (applied files keep their number)."
    )]
    Duplicate {
        version: u32,
        path: String,
        other: String,
    },
    #[error(
        "{path} (number {version}) was applied, but no SQL file has that number now.\n\
         Applied SQL files must stay: put it back, or start clean with `findemo reset`."
    )]
    Missing { version: u32, path: String },
    #[error(
        "{path}: {reason}; SQL file names start with their number, from 1 up, e.g. 0004_more.sql"
    )]
    BadName { path: String, reason: &'static str },
    #[error("{path}: unknown placeholder {{{{{name}}}}}")]
    Placeholder { path: String, name: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

/// What a database records for one applied file: the path it had then (the version
/// is read out of it, so records written when files were keyed by path still count)
/// and its checksum.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub path: String,
    pub checksum: String,
}

impl Migration {
    /// The number the file name starts with: the key it is recorded under.
    pub fn version(&self) -> Result<u32, MigrateError> {
        version_of(&self.path)
    }

    /// FNV-1a 64 of the file's text, in hex.
    pub fn checksum(&self) -> String {
        checksum(&self.sql)
    }
}

/// The version of a SQL file (or of a recorded path): the number its name starts with,
/// 1 or more.
pub fn version_of(path: &str) -> Result<u32, MigrateError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let digits = &name[..name
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(name.len())];
    let bad = |reason| MigrateError::BadName {
        path: path.to_string(),
        reason,
    };
    match digits.parse::<u32>() {
        Ok(0) => Err(bad("version 0 is not allowed")),
        Ok(version) => Ok(version),
        Err(_) if digits.is_empty() => Err(bad("no number at the start of the name")),
        Err(_) => Err(bad("the number is too large")),
    }
}

/// Each file's version, in the files' order; an error for a bad name or a number used
/// twice.
fn versions(files: &[Migration]) -> Result<Vec<u32>, MigrateError> {
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let version = file.version()?;
        if let Some(other) = seen.insert(version, &file.path) {
            return Err(MigrateError::Duplicate {
                version,
                path: file.path.clone(),
                other: other.to_string(),
            });
        }
        out.push(version);
    }
    Ok(out)
}

/// A file's checksum: 64-bit FNV-1a of its text, in hex (recorded for every applied
/// file, so it must never change).
fn checksum(text: &str) -> String {
    use std::hash::Hasher;
    let mut hash = fnv::FnvHasher::default();
    hash.write(text.as_bytes());
    format!("{:016x}", hash.finish())
}

/// The files still to apply, in order. An error if two files share a number, if an
/// applied file changed, or if an applied version has no file any more.
pub fn pending<'a>(
    files: &'a [Migration],
    applied: &[Applied],
) -> Result<Vec<&'a Migration>, MigrateError> {
    let versions = versions(files)?;
    // Version -> checksums recorded for it. A stack whose file was renamed while
    // records were keyed by path holds two records of one version.
    let mut recorded: BTreeMap<u32, Vec<&Applied>> = BTreeMap::new();
    for record in applied {
        recorded
            .entry(version_of(&record.path)?)
            .or_default()
            .push(record);
    }
    if let Some((&version, records)) = recorded.iter().find(|(v, _)| !versions.contains(v)) {
        return Err(MigrateError::Missing {
            version,
            path: records[0].path.clone(),
        });
    }
    let mut todo = Vec::new();
    for (file, version) in files.iter().zip(versions) {
        let Some(records) = recorded.get(&version) else {
            todo.push(file);
            continue;
        };
        let checksum = file.checksum();
        if !records.iter().any(|r| r.checksum == checksum) {
            return Err(MigrateError::Changed {
                path: file.path.clone(),
                recorded: records[records.len() - 1].checksum.clone(),
                now: checksum,
            });
        }
    }
    Ok(todo)
}

/// A database that records which files were applied to it: each back-end creates its
/// table when new and reads it oldest first. Its records are keyed by path since the
/// first release; [`pending`] reads the version out of each.
pub trait Records {
    type Error: From<MigrateError>;

    async fn applied(&self) -> Result<Vec<Applied>, Self::Error>;
}

/// The files not yet applied to `db`, in order (an error as [`pending`] says).
pub async fn pending_in<'a, D: Records>(
    db: &D,
    files: &'a [Migration],
) -> Result<Vec<&'a Migration>, D::Error> {
    Ok(pending(files, &db.applied().await?)?)
}

/// Replaces each `{{name}}` with its value; any other placeholder is an error.
pub fn render(path: &str, text: &str, vars: &[(&str, &str)]) -> Result<String, MigrateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| MigrateError::Placeholder {
            path: path.to_string(),
            name: after.chars().take(20).collect(),
        })?;
        let name = after[..end].trim();
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| MigrateError::Placeholder {
                path: path.to_string(),
                name: name.to_string(),
            })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Splits a file into statements: a statement ends with a line whose last character
/// is `;`. Comment lines (`--`) and blank lines are dropped. Returns each statement
/// with the line it starts on.
pub fn statements(sql: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, line) in sql.lines().enumerate() {
        let trimmed = line.trim_end();
        if trimmed.trim_start().starts_with("--") || trimmed.trim().is_empty() {
            continue;
        }
        if current.is_empty() {
            start = i + 1;
        }
        current.push_str(trimmed);
        current.push('\n');
        if let Some(body) = trimmed.strip_suffix(';') {
            current.truncate(current.len() - (trimmed.len() - body.len()) - 1);
            out.push((start, current.trim().to_string()));
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push((start, current.trim().to_string()));
    }
    out
}

/// The 1-based line of byte offset `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_never_change() {
        // FNV-1a 64 test vectors: stacks hold checksums made by every earlier version.
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_eq!(checksum("a"), "af63dc4c8601ec8c");
        assert_eq!(checksum("foobar"), "85944171f73967e8");
    }

    #[test]
    fn file_lists_match_the_folders() {
        let builtin = PipelineFiles::builtin();
        let from_dir = PipelineFiles::from_dir(Path::new(".")).unwrap();
        for (list, on_disk) in [
            (&builtin.postgres, &from_dir.postgres),
            (&builtin.clickhouse, &from_dir.clickhouse),
        ] {
            let on_disk: Vec<String> = on_disk.iter().map(|m| m.path.clone()).collect();
            let listed: Vec<String> = list.iter().map(|m| m.path.clone()).collect();
            assert_eq!(listed, on_disk, "update the list in migrate.rs");
            let versions = versions(list).unwrap();
            assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        }
        assert!(from_dir
            .connector
            .path
            .ends_with("connectors/postgres-source.json"));
    }

    fn file(path: &str, sql: &str) -> Migration {
        Migration {
            path: path.into(),
            sql: sql.into(),
        }
    }

    fn record(file: &Migration) -> Applied {
        Applied {
            path: file.path.clone(),
            checksum: file.checksum(),
        }
    }

    #[test]
    fn pending_skips_applied_and_reports_changed() {
        let files = [file("a/0001_x.sql", "one"), file("a/0002_y.sql", "two")];
        let mut applied = Vec::new();
        assert_eq!(pending(&files, &applied).unwrap().len(), 2);
        applied.push(record(&files[0]));
        assert_eq!(pending(&files, &applied).unwrap(), vec![&files[1]]);
        applied.push(Applied {
            path: "a/0002_y.sql".into(),
            checksum: "0000".into(),
        });
        let err = pending(&files, &applied).unwrap_err();
        assert!(matches!(err, MigrateError::Changed { ref path, .. } if path == "a/0002_y.sql"));
    }

    #[test]
    fn records_keyed_by_path_are_read_as_versions() {
        // What stacks created before versions recorded, in both databases.
        for (path, version) in [
            ("sql/postgres/0001_tables.sql", 1),
            ("sql/clickhouse/0005_by_account.sql", 5),
            ("0042_bare.sql", 42),
            ("sql/clickhouse/7more.sql", 7),
        ] {
            assert_eq!(version_of(path), Ok(version), "{path}");
        }
        // Every built-in file recorded by path counts as applied: nothing re-runs.
        let builtin = PipelineFiles::builtin();
        for files in [&builtin.postgres, &builtin.clickhouse] {
            let applied: Vec<Applied> = files.iter().map(record).collect();
            assert_eq!(pending(files, &applied).unwrap(), Vec::<&Migration>::new());
        }
        // A file renamed (or read from another folder) keeps its version.
        let renamed = [file("elsewhere/0001_renamed.sql", "one")];
        let applied = [record(&file("sql/postgres/0001_x.sql", "one"))];
        assert!(pending(&renamed, &applied).unwrap().is_empty());
    }

    #[test]
    fn duplicate_numbers_missing_files_and_bad_names_are_reported() {
        let files = [file("a/0001_x.sql", "one"), file("a/0001_y.sql", "two")];
        let err = pending(&files, &[]).unwrap_err();
        assert!(
            matches!(err, MigrateError::Duplicate { version: 1, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("a/0001_y.sql and a/0001_x.sql"),
            "{err}"
        );

        let files = [file("a/0001_x.sql", "one")];
        let applied = [record(&files[0]), record(&file("a/0002_gone.sql", "two"))];
        let err = pending(&files, &applied).unwrap_err();
        assert_eq!(
            err,
            MigrateError::Missing {
                version: 2,
                path: "a/0002_gone.sql".into()
            }
        );

        for (path, reason) in [
            ("a/0000_x.sql", "version 0 is not allowed"),
            ("a/x.sql", "no number at the start of the name"),
            ("a/99999999999_x.sql", "the number is too large"),
        ] {
            let err = pending(&[file(path, "")], &[]).unwrap_err();
            assert_eq!(
                err,
                MigrateError::BadName {
                    path: path.into(),
                    reason
                }
            );
        }
    }

    #[test]
    fn folder_with_a_bad_name_is_refused_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let sql = dir.path().join("sql/postgres");
        std::fs::create_dir_all(&sql).unwrap();
        std::fs::write(sql.join("0000_first.sql"), "SELECT 1;").unwrap();
        let err = read_sql_dir(dir.path(), "sql/postgres").unwrap_err();
        assert!(
            err.to_string().contains("version 0 is not allowed"),
            "{err}"
        );
    }

    #[test]
    fn render_fills_known_placeholders_only() {
        let vars = [("broker", "kafka:29092")];
        assert_eq!(
            render("f", "a {{broker}} b {{ broker }}", &vars).unwrap(),
            "a kafka:29092 b kafka:29092"
        );
        assert!(render("f", "{{nope}}", &vars).is_err());
        assert!(render("f", "{{broken", &vars).is_err());
    }

    #[test]
    fn statements_split_at_line_ends() {
        let sql = "-- head\nCREATE TABLE a (x int);\n\nSELECT 'a;b'\n  FROM t;\nSELECT 1\n";
        let got = statements(sql);
        assert_eq!(
            got,
            vec![
                (2, "CREATE TABLE a (x int)".to_string()),
                (4, "SELECT 'a;b'\n  FROM t".to_string()),
                (6, "SELECT 1".to_string()),
            ]
        );
        assert_eq!(line_of("a\nb\nc", 2), 2);
    }
}
