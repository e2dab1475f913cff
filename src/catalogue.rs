//! The captured tables: the one list every name in the pipeline is derived from (the
//! connector's table list, the Kafka topics, ClickHouse's Kafka tables and consumer
//! groups, the silver views, the tables the generator writes). The SQL files, which
//! are never edited once applied, are checked against it by a test.

/// One PostgreSQL table Debezium captures.
#[derive(Debug, Clone, Copy)]
pub struct Captured {
    pub table: &'static str,
    /// The silver view of its current rows (the canary has none: it is only probed).
    pub silver: Option<&'static str>,
}

const fn captured(table: &'static str, silver: &'static str) -> Captured {
    Captured {
        table,
        silver: Some(silver),
    }
}

pub const CAPTURED: [Captured; 6] = [
    captured("raw_accounts", "silver.accounts_current"),
    captured("raw_merchants", "silver.merchants_current"),
    captured("raw_ip_geo", "silver.ip_geo_current"),
    captured("raw_fx_rates", "silver.fx_rates_current"),
    captured("raw_transactions", "silver.transactions_current"),
    Captured {
        table: "findemo_canary",
        silver: None,
    },
];

/// The captured tables' names, in [`CAPTURED`] order.
pub const TABLES: [&str; 6] = {
    let mut names = [""; 6];
    let mut i = 0;
    while i < names.len() {
        names[i] = CAPTURED[i].table;
        i += 1;
    }
    names
};

/// (table, silver view) of every table with a silver view: the generator's tables.
pub fn silver_views() -> impl Iterator<Item = (&'static str, &'static str)> {
    CAPTURED.iter().filter_map(|c| Some((c.table, c.silver?)))
}

/// The Kafka topic Debezium writes `table`'s changes to.
pub fn topic_name(stack: &str, table: &str) -> String {
    format!("{stack}.public.{table}")
}

/// The consumer group of the ClickHouse Kafka table reading `table`'s topic (the
/// `group_prefix` of sql/clickhouse/0001_bronze.sql).
pub fn clickhouse_group(stack: &str, table: &str) -> String {
    format!("{stack}-clickhouse-{table}")
}

/// The connector's `table.include.list`.
pub fn include_list() -> String {
    TABLES.map(|t| format!("public.{t}")).join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bronze table that reads `table`'s topic.
    fn kafka_table(table: &str) -> String {
        format!("bronze.{table}_queue")
    }

    /// The words of `sql` that name a table, lower-case, without comments.
    fn words(sql: &str) -> Vec<String> {
        sql.lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')))
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    }

    #[test]
    fn the_sql_files_hold_what_the_catalogue_says() {
        let tables = words(include_str!("../sql/postgres/0001_tables.sql"));
        let publication = words(include_str!("../sql/postgres/0002_publication.sql"));
        let bronze = include_str!("../sql/clickhouse/0001_bronze.sql");
        let silver = words(include_str!("../sql/clickhouse/0002_silver.sql"));
        for c in CAPTURED {
            assert!(tables.iter().any(|w| w == c.table), "no table {}", c.table);
            assert!(
                publication.iter().any(|w| w == c.table),
                "{} not published",
                c.table
            );
            let queue = kafka_table(c.table);
            assert!(bronze.contains(&format!("EXISTS {queue} (")), "no {queue}");
            assert!(
                bronze.contains(&format!(
                    "kafka_group_name = '{{{{group_prefix}}}}-{}'",
                    c.table
                )),
                "{} has another group",
                c.table
            );
            if let Some(view) = c.silver {
                assert!(silver.iter().any(|w| w == view), "no {view}");
            }
        }
        // And nothing else is published.
        let published: Vec<&String> = publication
            .iter()
            .filter(|w| (w.starts_with("raw_") || w.starts_with("findemo_")) && *w != "findemo_cdc")
            .collect();
        assert_eq!(published.len(), CAPTURED.len(), "{published:?}");
    }

    #[test]
    fn names_are_derived_from_the_table() {
        assert_eq!(topic_name("kaf", "raw_accounts"), "kaf.public.raw_accounts");
        assert_eq!(
            clickhouse_group("kaf", "raw_accounts"),
            "kaf-clickhouse-raw_accounts"
        );
        assert_eq!(kafka_table("raw_accounts"), "bronze.raw_accounts_queue");
        assert!(include_list().starts_with("public.raw_accounts,public.raw_merchants,"));
        assert!(include_list().ends_with(",public.findemo_canary"));
        assert_eq!(silver_views().count(), 5);
    }
}
