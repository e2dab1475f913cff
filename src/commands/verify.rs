//! `findemo verify`: wait (bounded) until ClickHouse has caught up with PostgreSQL,
//! then reconcile them: per day, transaction counts and amount sums (as written and
//! in EUR), source vs silver and source vs gold; and the row count of every reference
//! table, source vs silver. Exit 0 only when everything agrees.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::app::Ctx;
use crate::catalogue;
use crate::cli::VerifyArgs;
use crate::clients::clickhouse::ClickHouse;
use crate::clients::postgres;
use crate::commands::CommandError;
use crate::retry::{Backoff, Limit};

const SOURCE_DAYS: &str = "\
    SELECT t.\"timestamp\"::date::text, count(*)::text, sum(t.amount)::text, \
           coalesce(sum(t.amount * f.rate_to_eur), 0)::text \
    FROM raw_transactions t \
    LEFT JOIN raw_fx_rates f ON f.date = t.\"timestamp\"::date AND f.currency = t.currency \
    GROUP BY 1";
const SILVER_DAYS: &str = "\
    SELECT toString(day) AS day, toString(count()) AS n, toString(sum(amount)) AS amount, \
           toString(sum(amount_eur)) AS eur \
    FROM silver.transactions_current GROUP BY day";
const GOLD_DAYS: &str = "\
    SELECT toString(day) AS day, toString(transactions) AS n, toString(amount_sum) AS amount, \
           toString(total_eur) AS eur \
    FROM gold.daily_kpis";

/// One day's transactions in one place: row count, amount sum, EUR sum. Sums are
/// compared as exact decimals, never as floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Day {
    #[serde(skip_serializing)]
    day: String,
    n: String,
    amount: String,
    eur: String,
}

impl Day {
    /// Equal figures, each read as an exact decimal; one that cannot be read is never
    /// equal to anything.
    fn same(&self, other: &Day) -> bool {
        let eq =
            |a: &str, b: &str| matches!((decimal(a), decimal(b)), (Some(x), Some(y)) if x == y);
        eq(&self.n, &other.n) && eq(&self.amount, &other.amount) && eq(&self.eur, &other.eur)
    }
}

#[derive(Debug, Serialize)]
struct DayReport {
    day: String,
    source: Option<Day>,
    silver: Option<Day>,
    gold: Option<Day>,
    agree: bool,
}

#[derive(Debug, Serialize)]
struct TableReport {
    table: &'static str,
    source: u64,
    silver: u64,
    agree: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    stack: String,
    agree: bool,
    waited_secs: f64,
    tables: Vec<TableReport>,
    days: Vec<DayReport>,
}

pub async fn run(args: VerifyArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let config = &ctx.config;
    let endpoints = ctx.endpoints()?;
    let pg = postgres::connect(&endpoints.postgres).await?;
    let ch = ClickHouse::new(&endpoints.clickhouse);

    let started = Instant::now();
    let timeout = Duration::from_secs(args.timeout);
    let task = ctx
        .printer
        .task("verify", "comparing PostgreSQL and ClickHouse");
    let mut backoff = Backoff::constant(Limit::Until(timeout), Duration::from_millis(500));
    let report = loop {
        let report = compare(&pg, &ch, &config.stack, started).await?;
        if report.agree {
            break report;
        }
        let Some(pause) = backoff.next() else {
            break report;
        };
        task.message(&progress(&report));
        tokio::time::sleep(pause).await;
    };
    if report.agree {
        task.done(&format!(
            "ClickHouse caught up after {:.1}s",
            report.waited_secs
        ));
    } else {
        task.failed(&format!("still different after {}s", args.timeout));
    }

    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
        println!("{json}");
    } else {
        print_report(&report);
    }
    Ok(if report.agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) async fn compare(
    pg: &tokio_postgres::Client,
    ch: &ClickHouse,
    stack: &str,
    started: Instant,
) -> Result<Report, CommandError> {
    let mut tables = Vec::new();
    // Reference tables by count; transactions per day below.
    for (source, silver) in catalogue::silver_views().filter(|(t, _)| *t != "raw_transactions") {
        let row = pg
            .query_one(&format!("SELECT count(*) FROM {source}"), &[])
            .await
            .map_err(postgres::query_err(format!("count {source}")))?;
        let source_count: i64 = row.get(0);
        let text = ch
            .exec(&format!("SELECT count() FROM {silver}"))
            .await
            .map_err(crate::pipeline::PipelineError::from)?;
        let silver_count: u64 = text.trim().parse().map_err(|_| {
            CommandError::Refused(format!(
                "ClickHouse answered {text:?} to a count of {silver}"
            ))
        })?;
        tables.push(TableReport {
            table: source,
            source: source_count.max(0) as u64,
            silver: silver_count,
            agree: source_count.max(0) as u64 == silver_count,
        });
    }

    let source: Vec<Day> = pg
        .query(SOURCE_DAYS, &[])
        .await
        .map_err(postgres::query_err("sum transactions per day"))?
        .iter()
        .map(|r| Day {
            day: r.get(0),
            n: r.get(1),
            amount: r.get(2),
            eur: r.get(3),
        })
        .collect();
    let silver: Vec<Day> = ch
        .rows(SILVER_DAYS)
        .await
        .map_err(crate::pipeline::PipelineError::from)?;
    let gold: Vec<Day> = ch
        .rows(GOLD_DAYS)
        .await
        .map_err(crate::pipeline::PipelineError::from)?;

    let mut days: BTreeMap<String, DayReport> = BTreeMap::new();
    for (place, rows) in [(0, source), (1, silver), (2, gold)] {
        for row in rows {
            let entry = days.entry(row.day.clone()).or_insert_with(|| DayReport {
                day: row.day.clone(),
                source: None,
                silver: None,
                gold: None,
                agree: false,
            });
            let column = match place {
                0 => &mut entry.source,
                1 => &mut entry.silver,
                _ => &mut entry.gold,
            };
            *column = Some(row);
        }
    }
    let mut days: Vec<DayReport> = days.into_values().collect();
    for d in &mut days {
        d.agree = match (&d.source, &d.silver, &d.gold) {
            (Some(src), Some(s), Some(g)) => src.same(s) && src.same(g),
            _ => false,
        };
    }

    let agree = tables.iter().all(|t| t.agree) && days.iter().all(|d| d.agree);
    Ok(Report {
        stack: stack.to_string(),
        agree,
        waited_secs: started.elapsed().as_secs_f64(),
        tables,
        days,
    })
}

/// A one-line summary of how far ClickHouse is, for the spinner.
fn progress(report: &Report) -> String {
    let total = |pick: fn(&DayReport) -> &Option<Day>| -> u128 {
        report
            .days
            .iter()
            .filter_map(|d| pick(d).as_ref())
            .filter_map(|d| decimal(&d.n))
            .sum::<i128>()
            .max(0) as u128
    };
    format!(
        "waiting for ClickHouse: silver has {} of {} transactions, gold {}",
        total(|d| &d.silver),
        total(|d| &d.source),
        total(|d| &d.gold)
    )
}

fn print_report(report: &Report) {
    println!(
        "Reconciliation of stack '{}': PostgreSQL vs ClickHouse",
        report.stack
    );
    println!("{:<16} {:>12} {:>12}  STATUS", "TABLE", "SOURCE", "SILVER");
    for t in &report.tables {
        println!(
            "{:<16} {:>12} {:>12}  {}",
            t.table,
            t.source,
            t.silver,
            if t.agree { "ok" } else { "DIFFERENT" }
        );
    }
    let bad: Vec<&DayReport> = report.days.iter().filter(|d| !d.agree).collect();
    println!(
        "raw_transactions: {} days compared, {} agree in silver and gold",
        report.days.len(),
        report.days.len() - bad.len()
    );
    let shown: Vec<&DayReport> = if report.days.len() <= 10 {
        report.days.iter().collect()
    } else {
        bad.iter().take(20).copied().collect()
    };
    if !shown.is_empty() {
        println!(
            "{:<10} {:>24} {:>24} {:>24}  STATUS",
            "DAY", "SOURCE rows/amount", "SILVER rows/amount", "GOLD rows/amount"
        );
        let cell = |d: &Option<Day>| match d {
            Some(d) => format!("{}/{}", d.n, trim_decimal(&d.amount)),
            None => "-".to_string(),
        };
        for d in shown {
            println!(
                "{:<10} {:>24} {:>24} {:>24}  {}",
                d.day,
                cell(&d.source),
                cell(&d.silver),
                cell(&d.gold),
                if d.agree { "ok" } else { "DIFFERENT" }
            );
        }
    }
    if report.agree {
        println!("Verified: ClickHouse agrees with PostgreSQL.");
    } else {
        println!(
            "NOT verified: ClickHouse differs from PostgreSQL (waited {:.0}s). \
             `findemo status` shows whether the pipeline is still moving.",
            report.waited_secs
        );
    }
}

/// An exact decimal as an integer count of 10^-8 units: "12.5" -> 1_250_000_000.
pub(crate) fn decimal(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.len() > 8 && frac[8..].chars().any(|c| c != '0') {
        return None;
    }
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(8).collect();
    let value: i128 = format!("{}{frac}", if whole.is_empty() { "0" } else { whole })
        .parse()
        .ok()?;
    Some(if negative { -value } else { value })
}

fn trim_decimal(text: &str) -> String {
    match text.split_once('.') {
        Some((w, f)) => {
            let f = f.trim_end_matches('0');
            let f = if f.len() < 2 {
                format!("{f:0<2}")
            } else {
                f.to_string()
            };
            format!("{w}.{f}")
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(decimal("12.5"), Some(1_250_000_000));
        assert_eq!(decimal("12.50000000"), decimal("12.5"));
        assert_eq!(decimal("-0.01"), Some(-1_000_000));
        assert_eq!(decimal("7"), Some(700_000_000));
        assert_ne!(decimal("0.1"), decimal("0.10000001"));
        assert_eq!(decimal("1.000000000"), decimal("1"));
        assert_eq!(decimal("1.0000000001"), None);
        assert_eq!(decimal("abc"), None);
        assert_eq!(trim_decimal("12.50000000"), "12.50");
        assert_eq!(trim_decimal("3.14159000"), "3.14159");
    }

    #[test]
    fn a_day_agrees_only_on_all_three_figures() {
        let day = |n: &str, amount: &str, eur: &str| Day {
            day: "2024-05-01".into(),
            n: n.into(),
            amount: amount.into(),
            eur: eur.into(),
        };
        assert!(day("3", "10.50", "9.66").same(&day("3", "10.5", "9.66000000")));
        assert!(!day("3", "10.50", "9.66").same(&day("2", "10.50", "9.66")));
        assert!(!day("3", "10.50", "9.66").same(&day("3", "10.51", "9.66")));
        assert!(!day("x", "10.50", "9.66").same(&day("x", "10.50", "9.66")));
    }
}
