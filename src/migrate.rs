//! SQL files applied in order, once, with a checksum: the sqlx migrator's model.
//!
//! The files live in `sql/postgres/` and `sql/clickhouse/` and are compiled into the
//! binary, so `findemo` works from any directory. Each applied file is recorded in the
//! database it was applied to; a file changed after it was applied is reported, never
//! silently skipped or re-run.

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
    if let Some(file) = files.iter().find(|f| f.version() == 0) {
        return Err(MigrateError::Read {
            path: file.path.clone(),
            reason: "SQL file names must start with their number, e.g. 0004_more.sql".into(),
        });
    }
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
    #[error("{path}: unknown placeholder {{{{{name}}}}}")]
    Placeholder { path: String, name: String },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
}

/// What the database says was applied: file path -> checksum.
pub type Applied = BTreeMap<String, String>;

impl Migration {
    /// The number the file name starts with.
    pub fn version(&self) -> u32 {
        let name = self.path.rsplit('/').next().unwrap_or(&self.path);
        let digits: String = name.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().unwrap_or(0)
    }

    /// FNV-1a 64 of the file's text, in hex.
    pub fn checksum(&self) -> String {
        fnv1a(&self.sql)
    }
}

/// FNV-1a 64 of `text`, in hex: a stable fingerprint (not a security hash).
pub fn fnv1a(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The files still to apply, in order; an error if an applied file has changed.
pub fn pending<'a>(
    files: &'a [Migration],
    applied: &Applied,
) -> Result<Vec<&'a Migration>, MigrateError> {
    let mut todo = Vec::new();
    for file in files {
        match applied.get(&file.path) {
            Some(recorded) if *recorded == file.checksum() => {}
            Some(recorded) => {
                return Err(MigrateError::Changed {
                    path: file.path.clone(),
                    recorded: recorded.clone(),
                    now: file.checksum(),
                })
            }
            None => todo.push(file),
        }
    }
    Ok(todo)
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
            let versions: Vec<u32> = list.iter().map(Migration::version).collect();
            assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        }
        assert!(from_dir
            .connector
            .path
            .ends_with("connectors/postgres-source.json"));
    }

    #[test]
    fn pending_skips_applied_and_reports_changed() {
        let file = |path: &str, sql: &str| Migration {
            path: path.into(),
            sql: sql.into(),
        };
        let files = [file("a/0001_x.sql", "one"), file("a/0002_y.sql", "two")];
        let mut applied = Applied::new();
        assert_eq!(pending(&files, &applied).unwrap().len(), 2);
        applied.insert("a/0001_x.sql".into(), files[0].checksum());
        assert_eq!(pending(&files, &applied).unwrap(), vec![&files[1]]);
        applied.insert("a/0002_y.sql".into(), "0000".into());
        let err = pending(&files, &applied).unwrap_err();
        assert!(matches!(err, MigrateError::Changed { ref path, .. } if path == "a/0002_y.sql"));
        assert_eq!(files[0].version(), 1);
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
