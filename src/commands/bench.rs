//! `findemo bench freshness|throughput`: runs a scenario of [`crate::bench`] on the
//! stack and prints its figures, as a table or as JSON, and turns `--max-p95` and
//! `--min-rate` into an exit code for users' CI.

use std::process::ExitCode;

use serde::Serialize;

use crate::app::Ctx;
use crate::bench::freshness::{self, FreshnessReport};
use crate::bench::throughput::{self, Backlog, ThroughputReport};
use crate::bench::Summary;
use crate::cli::{BenchArgs, BenchScenario, FreshnessArgs, ThroughputArgs};
use crate::commands::CommandError;
use crate::progress::thousands;

pub async fn run(args: BenchArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    match args.scenario {
        BenchScenario::Freshness(args) => run_freshness(args, ctx).await,
        BenchScenario::Throughput(args) => run_throughput(args, ctx).await,
    }
}

async fn run_freshness(args: FreshnessArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let endpoints = ctx.endpoints()?;
    let report = freshness::run(
        &ctx.config,
        &endpoints,
        &ctx.printer,
        args.rate,
        args.duration,
        args.seed,
    )
    .await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_freshness(&report);
    }
    let Some(limit) = args.max_p95 else {
        return Ok(ExitCode::SUCCESS);
    };
    match missed_p95(&report, limit) {
        None => Ok(ExitCode::SUCCESS),
        Some(reason) => {
            eprintln!("findemo: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Why a run misses `--max-p95 limit`, if it does.
fn missed_p95(report: &FreshnessReport, limit_ms: u64) -> Option<String> {
    match &report.commit_to_silver {
        None => Some(format!(
            "freshness p95 unknown (no probe reached silver), --max-p95 is {limit_ms} ms"
        )),
        Some(s) if s.p95_ms > limit_ms as f64 => Some(format!(
            "freshness p95 {:.0} ms is above --max-p95 {limit_ms} ms ({} probes at {} tx/s)",
            s.p95_ms,
            s.count,
            thousands(report.target_rate_per_sec.into())
        )),
        Some(_) => None,
    }
}

async fn run_throughput(args: ThroughputArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let rates = throughput::rates(args.start, args.step, args.max_rate);
    if rates.is_empty() {
        return Err(CommandError::Refused(format!(
            "--start {} is above --max-rate {}: no step to run",
            args.start, args.max_rate
        )));
    }
    let endpoints = ctx.endpoints()?;
    let report = throughput::run(
        &ctx.config,
        &endpoints,
        &ctx.printer,
        &rates,
        args.step_duration,
        args.seed,
    )
    .await?;
    if args.json {
        print_json(&report)?;
    } else {
        print_throughput(&report);
    }
    let Some(min) = args.min_rate else {
        return Ok(ExitCode::SUCCESS);
    };
    let sustained = report.sustained_rate_per_sec.unwrap_or(0);
    if sustained < min {
        eprintln!(
            "findemo: sustained rate {} tx/s is below --min-rate {} tx/s{}",
            thousands(sustained.into()),
            thousands(min.into()),
            report
                .saturated
                .map(|s| format!(" (saturated first: {})", s.describe()))
                .unwrap_or_default()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(report: &impl Serialize) -> Result<(), CommandError> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    println!("{json}");
    Ok(())
}

fn print_freshness(r: &FreshnessReport) {
    println!(
        "Freshness at {} tx/s (achieved {}/s) for {:.0}s: {} probes, one every {} ms, \
         polled every {} ms; {} not seen in silver.",
        thousands(r.target_rate_per_sec.into()),
        thousands(r.achieved_rate_per_sec.round() as u64),
        r.duration_secs,
        r.probes_sent,
        r.probe_every_ms,
        r.poll_every_ms,
        r.probes_missed
    );
    println!(
        "{:<28} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "STAGE (ms)", "COUNT", "MIN", "P50", "P95", "P99", "MAX"
    );
    let row = |name: &str, s: &Option<Summary>| match s {
        Some(s) => println!(
            "{name:<28} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            s.count, s.min_ms, s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
        ),
        None => println!("{name:<28} {:>6} no data", 0),
    };
    row("commit -> visible in silver", &r.commit_to_silver);
    row("  commit -> in Kafka", &r.commit_to_kafka);
    row("  Kafka -> visible in silver", &r.kafka_to_silver);
    println!("Clock: {}.", r.clock);
    println!("Not told apart:");
    for note in r.not_measured {
        println!("  - {note}.");
    }
}

fn print_throughput(r: &ThroughputReport) {
    println!(
        "Throughput, {:.0}s steps. Backlogs in events of raw_transactions, minimum over \
         each half of the step (first/second):",
        r.step_duration_secs
    );
    println!(
        "{:>8} {:>9} {:>19} {:>19} {:>19} {:>14}  VERDICT",
        "RATE/S", "ACHIEVED", "DEBEZIUM", "KAFKA->CLICKHOUSE", "END TO END", "SLOT LAG B"
    );
    for s in &r.steps {
        println!(
            "{:>8} {:>9} {:>19} {:>19} {:>19} {:>14}  {}",
            thousands(s.target_rate_per_sec.into()),
            thousands(s.achieved_rate_per_sec.round() as u64),
            backlog(&s.debezium),
            backlog(&s.kafka_to_clickhouse),
            backlog(&s.end_to_end),
            s.slot_lag_bytes_end
                .map_or("?".to_string(), |b| thousands(b.max(0) as u64)),
            match s.saturated {
                None => "sustained".to_string(),
                Some(stage) => format!("saturated: {}", stage.describe()),
            }
        );
    }
    match r.sustained_rate_per_sec {
        Some(rate) => println!(
            "Highest rate sustained for a whole step, end to end: {} tx/s.",
            thousands(rate.into())
        ),
        None => println!("No step was sustained."),
    }
    match (r.saturated, r.saturated_at_rate_per_sec) {
        (Some(stage), Some(rate)) => println!(
            "Saturated first at {} tx/s: {}.",
            thousands(rate.into()),
            stage.describe()
        ),
        _ => println!("No stage saturated up to the last step."),
    }
    println!("Rule: {}.", r.rule);
}

fn backlog(b: &Backlog) -> String {
    let n = |v: Option<i64>| v.map_or("?".to_string(), |n| thousands(n.max(0) as u64));
    format!(
        "{}/{}{}",
        n(b.first_half_min_events),
        n(b.second_half_min_events),
        if b.bounded { "" } else { " ↑" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(p95: Option<f64>) -> FreshnessReport {
        FreshnessReport {
            clock: freshness::CLOCK,
            target_rate_per_sec: 200,
            achieved_rate_per_sec: 200.0,
            duration_secs: 10.0,
            probe_every_ms: 500,
            poll_every_ms: 10,
            probes_sent: 20,
            probes_missed: 0,
            commit_to_silver: p95.map(|p| Summary {
                count: 20,
                min_ms: 1.0,
                p50_ms: 1.0,
                p95_ms: p,
                p99_ms: p,
                max_ms: p,
            }),
            commit_to_kafka: None,
            kafka_to_silver: None,
            not_measured: freshness::NOT_MEASURED,
        }
    }

    #[test]
    fn max_p95_is_a_limit() {
        assert_eq!(missed_p95(&report(Some(900.0)), 1000), None);
        assert_eq!(missed_p95(&report(Some(1000.0)), 1000), None);
        let reason = missed_p95(&report(Some(1500.0)), 1000).unwrap();
        assert!(
            reason.contains("p95 1500 ms is above --max-p95 1000 ms"),
            "{reason}"
        );
        assert!(missed_p95(&report(None), 1000).unwrap().contains("unknown"));
    }
}
