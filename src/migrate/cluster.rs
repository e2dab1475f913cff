//! ClickHouse DDL for a cluster: a statement that changes the schema is issued
//! `ON CLUSTER`, so every replica runs it, and a MergeTree-family engine becomes its
//! Replicated twin, with one ZooKeeper path per table. Other statements (INSERT,
//! SELECT) are left alone: they run once, on the server findemo talks to, and
//! replication carries what they write.
//!
//! The pipeline files stay written for one server; this is applied to each statement.

use crate::endpoints::ClickHouseCluster;

/// `statement` as it runs on `cluster`. A statement that already says `ON CLUSTER`,
/// and one that is not DDL, is returned as it is.
pub fn on_cluster(statement: &str, cluster: &ClickHouseCluster) -> String {
    if contains_words(statement, &["ON", "CLUSTER"]) {
        return statement.to_string();
    }
    let clause = format!(" ON CLUSTER `{}`", cluster.name);
    let Some(head) = head(statement) else {
        return statement.to_string();
    };
    let mut out = match head.cluster_at {
        ClusterAt::After(at) => format!("{}{clause}{}", &statement[..at], &statement[at..]),
        ClusterAt::End => format!("{statement}{clause}"),
    };
    if head.creates_table {
        if let Some(replicated) = replicated_engine(&out, &head.name, cluster) {
            out = replicated;
        }
    }
    out
}

/// Where `ON CLUSTER` goes.
enum ClusterAt {
    /// Right after the object's name (byte offset).
    After(usize),
    /// At the end (RENAME).
    End,
}

struct Head {
    cluster_at: ClusterAt,
    /// The object's name as written (`db.table`, quotes removed).
    name: String,
    creates_table: bool,
}

/// Reads the statement's head: what it does and to which object.
fn head(statement: &str) -> Option<Head> {
    let mut s = Scanner::new(statement);
    let verb = s.word()?.to_ascii_uppercase();
    let mut creates_table = false;
    match verb.as_str() {
        "CREATE" | "ATTACH" => {
            if s.keyword("OR") && !s.keyword("REPLACE") {
                return None;
            }
            if s.keyword("TEMPORARY") {
                return None;
            }
            let kind = s.word()?.to_ascii_uppercase();
            match kind.as_str() {
                "TABLE" => creates_table = verb == "CREATE",
                "DATABASE" | "VIEW" | "DICTIONARY" => {}
                "MATERIALIZED" if s.keyword("VIEW") => {}
                _ => return None,
            }
            if s.keyword("IF") && !(s.keyword("NOT") && s.keyword("EXISTS")) {
                return None;
            }
        }
        "DROP" | "DETACH" | "TRUNCATE" => {
            let kind = s.word()?.to_ascii_uppercase();
            if !matches!(kind.as_str(), "TABLE" | "DATABASE" | "VIEW" | "DICTIONARY") {
                return None;
            }
            if s.keyword("IF") && !s.keyword("EXISTS") {
                return None;
            }
        }
        "ALTER" | "OPTIMIZE" => {
            if !s.keyword("TABLE") {
                return None;
            }
        }
        "RENAME" => {
            return s.keyword("TABLE").then(|| Head {
                cluster_at: ClusterAt::End,
                name: String::new(),
                creates_table: false,
            });
        }
        _ => return None,
    }
    let name = s.name()?;
    Some(Head {
        cluster_at: ClusterAt::After(s.pos),
        name,
        creates_table,
    })
}

/// The statement with its `ENGINE = ...MergeTree(args)` replaced by
/// `ENGINE = Replicated...MergeTree('path/db.table', '{replica}', args)`; `None` when
/// its engine is of another family or already Replicated.
fn replicated_engine(statement: &str, name: &str, cluster: &ClickHouseCluster) -> Option<String> {
    let mut s = Scanner::new(statement);
    while !(s.token()?.eq_ignore_ascii_case("ENGINE") && s.punct('=')) {}
    let engine_at = s.skip_space();
    let engine = s.word()?;
    if !engine.ends_with("MergeTree") || engine.starts_with("Replicated") {
        return None;
    }
    let path = format!("{}/{name}", cluster.tables_path).replace('\'', "\\'");
    let mut args = format!("'{path}', '{{replica}}'");
    let mut end = s.pos;
    if s.punct('(') {
        let close = s.closing_paren()?;
        let inner = statement[s.pos..close].trim();
        if !inner.is_empty() {
            args.push_str(", ");
            args.push_str(inner);
        }
        end = close + 1;
    }
    Some(format!(
        "{}Replicated{engine}({args}){}",
        &statement[..engine_at],
        &statement[end..]
    ))
}

/// Whether `words` occur one after the other, case-insensitively, outside quotes.
fn contains_words(statement: &str, words: &[&str]) -> bool {
    let mut s = Scanner::new(statement);
    let mut seen: Vec<String> = Vec::new();
    while let Some(token) = s.token() {
        seen.push(token.to_ascii_uppercase());
        if seen.len() >= words.len() && seen[seen.len() - words.len()..] == *words {
            return true;
        }
    }
    false
}

/// Reads SQL one token at a time: words, `quoted` names, 'strings', one character of
/// punctuation.
struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Skips white space and `--` comments; returns the position reached.
    fn skip_space(&mut self) -> usize {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return self.pos;
            }
        }
    }

    /// The next token, whatever it is.
    fn token(&mut self) -> Option<&'a str> {
        self.skip_space();
        let rest = self.rest();
        let first = rest.chars().next()?;
        let len = match first {
            '`' | '\'' | '"' => quoted_len(rest, first),
            c if is_word_char(c) => rest.find(|c| !is_word_char(c)).unwrap_or(rest.len()),
            c => c.len_utf8(),
        };
        self.pos += len;
        Some(&rest[..len])
    }

    /// The next token if it is a word.
    fn word(&mut self) -> Option<&'a str> {
        let at = self.pos;
        match self.token() {
            Some(t) if t.starts_with(is_word_char) => Some(t),
            _ => {
                self.pos = at;
                None
            }
        }
    }

    /// Consumes the keyword `kw` if it comes next.
    fn keyword(&mut self, kw: &str) -> bool {
        let at = self.pos;
        if self.word().is_some_and(|w| w.eq_ignore_ascii_case(kw)) {
            return true;
        }
        self.pos = at;
        false
    }

    /// Consumes the character `c` if it comes next.
    fn punct(&mut self, c: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            return true;
        }
        false
    }

    /// A name, `db.table` or `table`, each part a word or a `quoted` name; returned
    /// with the quotes removed.
    fn name(&mut self) -> Option<String> {
        let part = |s: &mut Scanner| -> Option<String> {
            let token = s.token()?;
            if let Some(inner) = token.strip_prefix('`') {
                return Some(inner.trim_end_matches('`').to_string());
            }
            token.starts_with(is_word_char).then(|| token.to_string())
        };
        let mut name = part(self)?;
        if self.rest().starts_with('.') {
            self.pos += 1;
            name = format!("{name}.{}", part(self)?);
        }
        Some(name)
    }

    /// The position of the `)` closing the `(` just read, quotes and nesting
    /// respected; the scanner stays after the `(`.
    fn closing_paren(&mut self) -> Option<usize> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(token) = self.token() {
            match token {
                "(" => depth += 1,
                ")" if depth == 0 => {
                    let close = self.pos - 1;
                    self.pos = start;
                    return Some(close);
                }
                ")" => depth -= 1,
                _ => {}
            }
        }
        None
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The length of the quoted token at the start of `rest` (backslash escapes kept
/// inside); the rest of the text when it is never closed.
fn quoted_len(rest: &str, quote: char) -> usize {
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return i + 1,
            _ => escaped = false,
        }
    }
    rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClickHouseCluster {
        ClickHouseCluster {
            name: "main".into(),
            tables_path: "/clickhouse/tables/{shard}/findemo-s".into(),
        }
    }

    fn rewrite(sql: &str) -> String {
        on_cluster(sql, &cluster())
    }

    #[test]
    fn ddl_heads_get_on_cluster_after_the_name() {
        for (sql, want) in [
            (
                "CREATE DATABASE IF NOT EXISTS bronze",
                "CREATE DATABASE IF NOT EXISTS bronze ON CLUSTER `main`",
            ),
            (
                "create materialized view if not exists bronze.to_x TO silver.x AS\nSELECT 1",
                "create materialized view if not exists bronze.to_x ON CLUSTER `main` TO silver.x AS\nSELECT 1",
            ),
            (
                "CREATE VIEW IF NOT EXISTS gold.`daily kpis` AS SELECT 1",
                "CREATE VIEW IF NOT EXISTS gold.`daily kpis` ON CLUSTER `main` AS SELECT 1",
            ),
            (
                "DROP TABLE IF EXISTS bronze.raw_accounts_mv",
                "DROP TABLE IF EXISTS bronze.raw_accounts_mv ON CLUSTER `main`",
            ),
            (
                "DROP DATABASE IF EXISTS bronze SYNC",
                "DROP DATABASE IF EXISTS bronze ON CLUSTER `main` SYNC",
            ),
            (
                "ALTER TABLE silver.accounts ADD COLUMN x UInt8",
                "ALTER TABLE silver.accounts ON CLUSTER `main` ADD COLUMN x UInt8",
            ),
            (
                "RENAME TABLE a.b TO a.c",
                "RENAME TABLE a.b TO a.c ON CLUSTER `main`",
            ),
            (
                "CREATE TABLE IF NOT EXISTS bronze.q (`x` String) ENGINE = Kafka SETTINGS kafka_format = 'JSONEachRow'",
                "CREATE TABLE IF NOT EXISTS bronze.q ON CLUSTER `main` (`x` String) ENGINE = Kafka SETTINGS kafka_format = 'JSONEachRow'",
            ),
        ] {
            assert_eq!(rewrite(sql), want, "{sql}");
        }
    }

    #[test]
    fn other_statements_run_once_as_written() {
        for sql in [
            "INSERT INTO silver.t SELECT * FROM silver.s",
            "SELECT 1",
            "CREATE TEMPORARY TABLE t (x UInt8) ENGINE = Memory",
            "CREATE TABLE a.b ON CLUSTER other (x UInt8) ENGINE = MergeTree ORDER BY x",
            "EXISTS TABLE findemo_meta.migrations",
        ] {
            assert_eq!(rewrite(sql), sql);
        }
    }

    #[test]
    fn merge_tree_engines_become_replicated_with_a_path_per_table() {
        let sql = "CREATE TABLE IF NOT EXISTS silver.accounts (\n    version UInt64\n) \
                   ENGINE = ReplacingMergeTree(version)\nORDER BY account_id";
        assert_eq!(
            rewrite(sql),
            "CREATE TABLE IF NOT EXISTS silver.accounts ON CLUSTER `main` (\n    version UInt64\n) \
             ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/findemo-s/silver.accounts', \
             '{replica}', version)\nORDER BY account_id"
        );
        let plain = "CREATE TABLE IF NOT EXISTS findemo_meta.migrations \
                     (path String, engine String) ENGINE = MergeTree ORDER BY path";
        assert_eq!(
            rewrite(plain),
            "CREATE TABLE IF NOT EXISTS findemo_meta.migrations ON CLUSTER `main` \
             (path String, engine String) ENGINE = ReplicatedMergeTree(\
             '/clickhouse/tables/{shard}/findemo-s/findemo_meta.migrations', '{replica}') ORDER BY path"
        );
        // Nested parentheses and quotes in the engine's arguments are kept whole.
        let old = "CREATE TABLE a.`b` (d Date) ENGINE=SummingMergeTree(d, (k, ')'), 8192)";
        assert_eq!(
            rewrite(old),
            "CREATE TABLE a.`b` ON CLUSTER `main` (d Date) ENGINE=ReplicatedSummingMergeTree(\
             '/clickhouse/tables/{shard}/findemo-s/a.b', '{replica}', d, (k, ')'), 8192)"
        );
        let already =
            "CREATE TABLE a.b (x UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY x";
        assert_eq!(
            rewrite(already),
            "CREATE TABLE a.b ON CLUSTER `main` (x UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY x"
        );
    }

    #[test]
    fn every_builtin_statement_is_ddl_on_the_cluster_or_a_single_insert() {
        let files = crate::migrate::PipelineFiles::builtin();
        for file in &files.clickhouse {
            for (line, sql) in crate::migrate::statements(&file.sql) {
                let out = rewrite(&sql);
                let upper = sql.trim_start().to_ascii_uppercase();
                if upper.starts_with("INSERT") {
                    assert_eq!(out, sql, "{}:{line}", file.path);
                    continue;
                }
                assert!(
                    out.contains("ON CLUSTER `main`"),
                    "{}:{line}: {out}",
                    file.path
                );
                if sql.contains("MergeTree") {
                    assert!(
                        out.contains("ENGINE = Replicated"),
                        "{}:{line}: {out}",
                        file.path
                    );
                }
            }
        }
    }
}
