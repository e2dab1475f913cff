//! The command line: clap derive, one `Args` struct per subcommand. Doc comments are
//! the help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Rate;
use crate::service::Service;

/// Stand up and drive a real-time financial data warehouse on one machine:
/// PostgreSQL -> Debezium (Kafka Connect) -> Kafka -> ClickHouse.
#[derive(Debug, Parser)]
#[command(name = "findemo", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./demo.yaml if present, else built-in defaults]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "FINDEMO_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Stack name: prefix of every container, volume and network (overrides demo.yaml)
    #[arg(long, global = true, env = "FINDEMO_STACK")]
    pub stack: Option<String>,

    /// Print only results and errors, no progress
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// More diagnostics on stderr (-v, -vv)
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the stack and its pipeline: check Docker and ports, pull missing images,
    /// start every service in order and wait until each is ready, apply the SQL files,
    /// register the Debezium connector, and prove a change reaches ClickHouse. Safe to
    /// run again: it repairs what is missing and leaves what runs alone.
    Up(UpArgs),
    /// Show every service's container state, readiness and endpoint. Exits non-zero
    /// when anything is not ready.
    Status(StatusArgs),
    /// Write realistic bank data into the stack's PostgreSQL: reference data once
    /// (accounts, merchants, IP geolocation, FX rates), then transactions at a steady
    /// rate, with pending ones settled later by UPDATE and a few deleted. The same
    /// --seed gives the same rows; a run that was stopped or killed continues where its
    /// seed's committed data ends, never writing a transaction twice.
    Generate(GenerateArgs),
    /// Stop the stack's containers, keeping their data for the next `up`.
    Down(DownArgs),
    /// Remove everything the stack created: containers, volumes (all data), network
    /// and its generated credentials.
    Reset(ResetArgs),
    /// Wait until ClickHouse has caught up with PostgreSQL, then reconcile them per
    /// day (transaction counts and amount sums, source vs silver and vs gold) and per
    /// reference table. Exits 0 only when everything agrees.
    Verify(VerifyArgs),
    /// Show a service's container logs.
    Logs(LogsArgs),
    /// Serve the live dashboard (gold KPIs and charts, analytics tables, a read-only
    /// SQL pad, the pipeline's state and every row's change history) until Ctrl-C.
    Dashboard(DashboardArgs),
    /// Measure the running pipeline: how fresh silver is at a given rate (commit ->
    /// visible in silver, on findemo's own clock), and the highest rate it sustains
    /// with bounded lag. Writes real transactions with the generator.
    Bench(BenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub scenario: BenchScenario,
}

#[derive(Debug, Subcommand)]
pub enum BenchScenario {
    /// Generate at --rate and, every 500 ms, commit a probe change to PostgreSQL and
    /// poll ClickHouse silver for it every 10 ms: commit -> visible in silver as
    /// p50/p95/p99/max, and the time to Kafka and from Kafka to silver.
    Freshness(FreshnessArgs),
    /// Step the generator's rate up until the pipeline's backlog stops being bounded;
    /// report the highest rate sustained for a whole step and the stage that
    /// saturated first.
    Throughput(ThroughputArgs),
}

#[derive(Debug, clap::Args)]
pub struct FreshnessArgs {
    /// Transactions per second written meanwhile
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// How long to generate and probe: 90s, 5m
    #[arg(long, default_value = "60s", value_name = "TIME", value_parser = parse_duration)]
    pub duration: Duration,
    /// Exit with code 1 when the p95 of commit -> visible in silver is above this
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_p95: Option<u64>,
    /// Seed of the generated transactions [default: generator.seed, else 1]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ThroughputArgs {
    /// Rate of the first step, transactions per second
    #[arg(long, default_value_t = 2500, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub start: u32,
    /// Added to the rate at each step
    #[arg(long, default_value_t = 2500, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub step: u32,
    /// How long each step lasts (at least 30s: ClickHouse inserts whole blocks, and
    /// each half of a step must be long enough to show a backlog drain)
    #[arg(long, default_value = "30s", value_name = "TIME", value_parser = parse_step_duration)]
    pub step_duration: Duration,
    /// The last step's rate at most
    #[arg(long, default_value_t = 30000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rate: u32,
    /// Exit with code 1 when the sustained rate is below this
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub min_rate: Option<u32>,
    /// Seed of the generated transactions [default: generator.seed, else 1]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// A step of `bench throughput`: at least 30 s (see [`ThroughputArgs::step_duration`]).
fn parse_step_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < Duration::from_secs(30) {
        return Err(format!(
            "{text:?}: a step lasts at least 30s, so that each half shows ClickHouse inserting"
        ));
    }
    Ok(duration)
}

#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// Port to listen on [default: dashboard.port in demo.yaml, else 5173]
    #[arg(long, short, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Address to listen on; anything but loopback exposes the stack's data to the network
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: std::net::IpAddr,
    /// Open the dashboard in the default browser once it listens
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Seconds to wait for ClickHouse to catch up before reporting differences
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Seconds to wait for each service to become ready [default: 180, or
    /// ready_timeout_secs in demo.yaml]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Show what would be created, applied and registered, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table (with --watch, one object a line)
    #[arg(long)]
    pub json: bool,
    /// Refresh every 2 seconds until Ctrl-C
    #[arg(long, short)]
    pub watch: bool,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Transactions per second, or `max` for as fast as PostgreSQL takes them
    /// [default: 1000, or generator.rate in demo.yaml]
    #[arg(long, value_name = "N|max", value_parser = Rate::parse, allow_negative_numbers = true)]
    pub rate: Option<Rate>,
    /// Stop after this long: 90s, 5m, 1h [default: run until Ctrl-C or --count]
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop when the seed has this many transactions in all, counting earlier runs
    /// (so running the same command again after Ctrl-C or a crash finishes the job)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub count: Option<u64>,
    /// Seed of the transaction stream: same seed, same transactions [default: 1, or
    /// generator.seed]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Stamp transactions from this UTC time at the target rate (1,000/s with `max`)
    /// instead of the wall clock, so that every column is reproducible:
    /// 2025-01-31 or 2025-01-31T08:00:00Z
    #[arg(long, value_name = "TIME", value_parser = crate::generate::parse_start)]
    pub start: Option<i64>,
    /// Accounts in the pool [default: 12345, or generator.accounts]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub accounts: Option<u32>,
    /// Merchants in the pool [default: 56, or generator.merchants]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub merchants: Option<u32>,
    /// IP addresses in the geolocation pool [default: 5678, or generator.ips]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub ips: Option<u32>,
    /// Days of FX rates before the first transaction [default: 365, or generator.fx_days]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub fx_days: Option<u32>,
    /// How new transactions are written: `insert` (one WAL record per row, safe across
    /// a Kafka Connect restart) or `copy` (plain COPY: rows share WAL positions, which
    /// released Debezium connectors can skip on a restart) [default: insert, or
    /// generator.write]
    #[arg(long, value_name = "insert|copy", value_parser = crate::config::WriteMethod::parse)]
    pub write: Option<crate::config::WriteMethod>,
}

/// `90`, `90s`, `500ms`, `5m`, `1h`: a length of time above zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("{text:?} is not a length of time such as 90s, 5m or 1h");
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(seconds > 0.0 && seconds < 1e9) {
        return Err(format!("{text:?}: the time must be above zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Seconds each container gets to shut down before it is killed
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub grace: u32,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The service whose logs to show
    #[arg(value_enum)]
    pub service: Service,
    /// Number of lines from the end to show
    #[arg(long, short = 'n', default_value_t = 200)]
    pub tail: usize,
    /// Keep following new output
    #[arg(long, short)]
    pub follow: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(Cli::try_parse_from(["findemo", "up", "--timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["findemo", "logs", "nosuch"]).is_err());
        assert!(Cli::try_parse_from(["findemo", "up", "--bogus"]).is_err());
        let cli = Cli::try_parse_from(["findemo", "logs", "kafka", "-n", "5"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Logs(LogsArgs { tail: 5, .. })
        ));
    }

    #[test]
    fn generate_flags() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["findemo", "generate"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Generate(args) => args,
                other => panic!("{other:?}"),
            })
        };
        let args = parse(&[
            "--rate",
            "max",
            "--duration",
            "5m",
            "--count",
            "10",
            "--seed",
            "3",
        ])
        .unwrap();
        assert_eq!(args.rate, Some(Rate::Max));
        assert_eq!(args.duration, Some(Duration::from_secs(300)));
        assert_eq!((args.count, args.seed), (Some(10), Some(3)));
        assert_eq!(
            parse(&["--rate", "5000"]).unwrap().rate,
            Some(Rate::PerSecond(5000.0))
        );
        assert!(parse(&["--start", "2025-01-31"]).unwrap().start.is_some());
        for bad in [
            &["--rate", "0"][..],
            &["--rate", "-5"],
            &["--rate", "fast"],
            &["--count", "0"],
            &["--count", "-1"],
            &["--accounts", "0"],
            &["--merchants", "0"],
            &["--ips", "0"],
            &["--duration", "0s"],
            &["--duration", "soon"],
            &["--start", "yesterday"],
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad[0]), "{bad:?}: {err}");
        }
        let err = parse(&["--rate", "-5"]).unwrap_err().to_string();
        assert!(err.contains("must be above 0"), "{err}");
    }

    #[test]
    fn bench_flags() {
        let cli = Cli::try_parse_from([
            "findemo",
            "bench",
            "freshness",
            "--rate",
            "200",
            "--duration",
            "10",
            "--max-p95",
            "1",
        ])
        .unwrap();
        let Command::Bench(BenchArgs {
            scenario: BenchScenario::Freshness(args),
        }) = cli.command
        else {
            panic!("not bench freshness");
        };
        assert_eq!(args.rate, 200);
        assert_eq!(args.duration, Duration::from_secs(10));
        assert_eq!(args.max_p95, Some(1));
        let cli = Cli::try_parse_from(["findemo", "bench", "throughput"]).unwrap();
        let Command::Bench(BenchArgs {
            scenario: BenchScenario::Throughput(args),
        }) = cli.command
        else {
            panic!("not bench throughput");
        };
        assert_eq!((args.start, args.step, args.max_rate), (2500, 2500, 30000));
        for bad in [
            &["freshness", "--rate", "0"][..],
            &["freshness", "--max-p95", "0"],
            &["throughput", "--step-duration", "25s"],
            &["throughput", "--min-rate", "-1"],
        ] {
            let mut argv = vec!["findemo", "bench"];
            argv.extend_from_slice(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("5 m").is_err());
    }
}
