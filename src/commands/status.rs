//! `findemo status`: is every service running and ready, does the connector run, and
//! how far along is the warehouse (rows per layer, each topic's end offset and
//! ClickHouse's consumer lag; with `--watch`, events per second per stage)? A table,
//! or JSON for scripts.
//!
//! Freshness is read on one clock, PostgreSQL's: its `clock_timestamp()` minus the
//! commit time (also written by PostgreSQL, carried by Debezium as `source_ts_ms`) of
//! the newest transaction change visible in silver. ClickHouse's clock is never
//! compared with PostgreSQL's, so services on different hosts do not skew it.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::Ctx;
use crate::cli::StatusArgs;
use crate::clients::clickhouse::ClickHouse;
use crate::clients::postgres;
use crate::commands::CommandError;
use crate::config::Runtime;
use crate::docker::Engine;
use crate::endpoints::Endpoints;
use crate::pipeline::{per_sec, total, Deployed, Health};
use crate::probe::WaitFor;
use crate::service::Service;
use crate::state;

#[derive(Debug, Serialize)]
struct Report {
    stack: String,
    healthy: bool,
    /// The first stage, in the data's direction, that stops it: none when healthy.
    broken: Option<Broken>,
    /// docker or external.
    runtime: &'static str,
    /// The Docker engine's address (Docker runtime).
    docker_host: Option<String>,
    credentials_file: Option<String>,
    services: Vec<ServiceReport>,
    /// Present once every service is ready. Its `freshness_secs` is on
    /// [`FRESHNESS_CLOCK`].
    pipeline: Option<Health>,
    /// Which clock `pipeline.freshness_secs` is read on.
    freshness_clock: &'static str,
    /// `--watch` only, from the second refresh on: events per second per stage over
    /// the last refresh interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    rates: Option<Rates>,
}

/// Events per second per stage, over the interval between two refreshes. A figure is
/// `None` when either reading of its counter is unknown.
#[derive(Debug, Serialize, PartialEq)]
struct Rates {
    interval_secs: f64,
    /// Inserts, updates and deletes on the captured tables (PostgreSQL's statistics).
    postgres_changes_per_sec: Option<f64>,
    /// Events appended to the topics (their end offsets).
    kafka_events_per_sec: Option<f64>,
    /// Change events landed in bronze.
    bronze_events_per_sec: Option<f64>,
    /// Rows added to silver's current views.
    silver_rows_per_sec: Option<f64>,
}

/// The counters of one reading that rates are taken from.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counters {
    postgres_changes: Option<f64>,
    kafka_events: Option<f64>,
    bronze_events: Option<f64>,
    silver_rows: Option<f64>,
    /// Per topic, its end offset.
    topics: Vec<(String, Option<f64>)>,
}

impl Counters {
    fn of(health: &Health) -> Counters {
        let f = |n: i64| n as f64;
        Counters {
            postgres_changes: health.postgres_changes.map(f),
            kafka_events: total(health.topics.iter().map(|t| t.end_offset)).map(f),
            bronze_events: total(health.tables.iter().map(|t| t.bronze)).map(|n| n as f64),
            silver_rows: total(health.tables.iter().map(|t| t.silver)).map(|n| n as f64),
            topics: health
                .topics
                .iter()
                .map(|t| (t.topic.clone(), t.end_offset.map(f)))
                .collect(),
        }
    }

    /// Rates from `before` to `self`, `secs` apart.
    fn rates_since(&self, before: &Counters, secs: f64) -> Rates {
        Rates {
            interval_secs: secs,
            postgres_changes_per_sec: per_sec(self.postgres_changes, before.postgres_changes, secs),
            kafka_events_per_sec: per_sec(self.kafka_events, before.kafka_events, secs),
            bronze_events_per_sec: per_sec(self.bronze_events, before.bronze_events, secs),
            silver_rows_per_sec: per_sec(self.silver_rows, before.silver_rows, secs),
        }
    }

    /// A topic's events per second since `before`.
    fn topic_rate(&self, topic: &str, before: &Counters, secs: f64) -> Option<f64> {
        let end = |c: &Counters| {
            c.topics
                .iter()
                .find(|(t, _)| t == topic)
                .and_then(|(_, n)| *n)
        };
        per_sec(end(self), end(before), secs)
    }
}

/// Where the data stops, and what to do about it.
#[derive(Debug, Serialize, PartialEq)]
struct Broken {
    /// postgres, connect, connector, kafka or clickhouse.
    stage: &'static str,
    reason: String,
    hint: &'static str,
}

/// The first broken stage from PostgreSQL to ClickHouse: a service that is not ready
/// (the pipeline is not read then), the connector or its task not running, a topic
/// the broker cannot describe.
fn first_broken(services: &[ServiceReport], pipeline: Option<&Health>) -> Option<Broken> {
    let service = |name: &str| services.iter().find(|s| s.name == name);
    let down = |name: &'static str| {
        service(name).filter(|s| !s.ready).map(|s| Broken {
            stage: name,
            reason: format!("{} ({})", s.detail, s.state),
            hint: match s.state.as_str() {
                "external" => {
                    "findemo does not run it: check that it runs and that this machine reaches it"
                }
                _ => "`findemo up` starts it; `findemo logs SERVICE` shows why it stopped",
            },
        })
    };
    let connector = || {
        let health = pipeline?;
        if health.running() {
            return None;
        }
        let tasks = match health.tasks.is_empty() {
            true => "no task".to_string(),
            false => format!("tasks {}", health.tasks.join(", ")),
        };
        Some(Broken {
            stage: "connector",
            reason: format!("{} is {} ({tasks})", health.connector, health.state),
            hint:
                "`findemo up` registers it or restarts its task; `findemo logs connect` shows why",
        })
    };
    let topics = || {
        let topic = pipeline?.topics.iter().find(|t| t.error.is_some())?;
        Some(Broken {
            stage: "kafka",
            reason: format!(
                "{}: {}",
                topic.topic,
                topic.error.clone().unwrap_or_default()
            ),
            hint: "`findemo up` creates missing topics; `findemo logs kafka` shows the broker",
        })
    };
    down("postgres")
        .or_else(|| down("connect"))
        .or_else(connector)
        .or_else(|| down("kafka"))
        .or_else(topics)
        .or_else(|| down("clickhouse"))
}

#[derive(Debug, Serialize)]
struct ServiceReport {
    name: &'static str,
    container: String,
    image: String,
    /// Docker's state of the container, or "missing".
    state: String,
    ready: bool,
    endpoint: String,
    /// What the readiness probe found: a version when ready, the reason when not.
    detail: String,
}

pub async fn run(args: StatusArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let engine = match ctx.config.runtime {
        Runtime::Docker => Some(Engine::connect().await?),
        Runtime::External(_) => None,
    };
    let engine = engine.as_ref();
    if !args.watch {
        let report = gather(ctx, engine).await?;
        show(&report, args.json, true)?;
        return Ok(if report.healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let clear = std::io::stdout().is_terminal() && !args.json;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut before: Option<(Instant, Counters)> = None;
    loop {
        let mut report = gather(ctx, engine).await?;
        let now = Instant::now();
        if let Some(health) = report.pipeline.as_mut() {
            let counters = Counters::of(health);
            if let Some((then, old)) = &before {
                let secs = now.duration_since(*then).as_secs_f64();
                for topic in &mut health.topics {
                    topic.events_per_sec = counters.topic_rate(&topic.topic, old, secs);
                }
                report.rates = Some(counters.rates_since(old, secs));
            }
            before = Some((now, counters));
        }
        if clear {
            // Home the cursor and clear the screen, like `watch`.
            print!("\x1b[H\x1b[2J");
        }
        // One JSON object a line, for scripts that follow the stream.
        show(&report, args.json, false)?;
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// How often `--watch` refreshes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

fn show(report: &Report, json: bool, pretty: bool) -> Result<(), CommandError> {
    if json {
        let json = if pretty {
            serde_json::to_string_pretty(report)
        } else {
            serde_json::to_string(report)
        }
        .map_err(std::io::Error::other)?;
        println!("{json}");
    } else {
        print_table(report);
    }
    Ok(())
}

/// Asks Docker (when findemo runs the services), every service and the pipeline how
/// they are.
async fn gather(ctx: &Ctx, engine: Option<&Engine>) -> Result<Report, CommandError> {
    let config = &ctx.config;
    // On Docker, a stack never brought up has no credentials yet: each running service
    // then says so. Elsewhere a missing password is an error of the configuration.
    let endpoints = match &config.runtime {
        Runtime::Docker => {
            state::load(&ctx.credentials_path)?.map(|creds| Endpoints::docker(config, &creds))
        }
        Runtime::External(_) => Some(ctx.endpoints()?),
    };

    let reports = Service::ALL.map(|service| {
        let endpoints = endpoints.as_ref();
        async move {
            let (container, image, state, running) = match engine {
                Some(engine) => {
                    let container = service.container_name(&config.stack);
                    let (state, running) = match engine.inspect(&container).await? {
                        Some(s) => (s.state.clone(), s.running),
                        None => ("missing".to_string(), false),
                    };
                    let image = config.service(service).image.clone();
                    (container, image, state, running)
                }
                None => (String::new(), String::new(), "external".to_string(), true),
            };
            let (ready, detail) = match (running, endpoints) {
                (false, _) => (false, "not running".to_string()),
                (true, None) => (false, "no credentials file: run `findemo up`".to_string()),
                (true, Some(endpoints)) => match WaitFor::of(service, endpoints).probe().await {
                    Ok(detail) => (true, detail),
                    Err(reason) => (false, reason.to_string()),
                },
            };
            Ok::<_, CommandError>(ServiceReport {
                name: service.name(),
                container,
                image,
                state,
                ready,
                endpoint: match endpoints {
                    Some(endpoints) => endpoints.address(service),
                    None => format!("127.0.0.1:{}", config.service(service).port),
                },
                detail,
            })
        }
    });
    let services = futures_util::future::try_join_all(reports).await?;
    let all_ready = services.iter().all(|s| s.ready);
    let pipeline = match (&endpoints, all_ready) {
        (Some(endpoints), true) => {
            let mut health = Deployed { config, endpoints }.health().await;
            health.freshness_secs = freshness_on_postgres_clock(endpoints).await;
            Some(health)
        }
        _ => None,
    };
    let broken = first_broken(&services, pipeline.as_ref());
    Ok(Report {
        stack: config.stack.clone(),
        // A topic the broker cannot describe (lost, or the broker not answering) is
        // as unhealthy as a stopped connector.
        healthy: broken.is_none() && pipeline.is_some(),
        broken,
        runtime: match engine {
            Some(_) => "docker",
            None => "external",
        },
        docker_host: engine.map(|e| e.host().to_string()),
        credentials_file: (engine.is_some() && endpoints.is_some())
            .then(|| ctx.credentials_path.display().to_string()),
        services,
        pipeline,
        freshness_clock: FRESHNESS_CLOCK,
        rates: None,
    })
}

const FRESHNESS_CLOCK: &str = "PostgreSQL's: its clock_timestamp() minus the commit time \
     PostgreSQL gave the newest transaction change visible in silver";

/// Seconds since the newest transaction change visible in silver was committed, both
/// ends read on PostgreSQL's clock (see the module's comment); `None` when silver has
/// none or a service cannot be asked. Silver is read first, so the figure includes the
/// time between the two reads and is never too young.
async fn freshness_on_postgres_clock(endpoints: &Endpoints) -> Option<f64> {
    let ch = ClickHouse::new(&endpoints.clickhouse);
    let newest_ms: i64 = ch
        .exec("SELECT if(count() = 0, '', toString(max(source_ts_ms))) FROM silver.transactions")
        .await
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let pg = postgres::connect(&endpoints.postgres).await.ok()?;
    let now_ms: i64 = pg
        .query_one(
            "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            &[],
        )
        .await
        .ok()?
        .get(0);
    Some(age_secs(now_ms, newest_ms))
}

/// `now_ms - then_ms` in seconds, never negative.
fn age_secs(now_ms: i64, then_ms: i64) -> f64 {
    (now_ms.saturating_sub(then_ms).max(0)) as f64 / 1000.0
}

fn print_table(report: &Report) {
    println!(
        "Stack '{}': {}",
        report.stack,
        if report.healthy {
            "healthy"
        } else {
            "NOT healthy"
        }
    );
    let width = report
        .services
        .iter()
        .map(|s| s.endpoint.len())
        .max()
        .unwrap_or(0)
        .max(16);
    println!(
        "{:<11} {:<9} {:<6} {:<width$} DETAIL",
        "SERVICE", "STATE", "READY", "ENDPOINT"
    );
    for s in &report.services {
        println!(
            "{:<11} {:<9} {:<6} {:<width$} {}",
            s.name,
            s.state,
            if s.ready { "yes" } else { "no" },
            s.endpoint,
            s.detail
        );
    }
    if let Some(b) = &report.broken {
        println!("Broken: {}: {}\n  {}", b.stage, b.reason, b.hint);
    }
    if let Some(p) = &report.pipeline {
        let tasks = if p.tasks.is_empty() {
            "no tasks".to_string()
        } else {
            format!("tasks {}", p.tasks.join(", "))
        };
        println!("Connector {}: {} ({tasks})", p.connector, p.state);
        let lag = p
            .slot_lag_bytes
            .map_or("unknown".to_string(), |b| format!("{b} bytes"));
        let fresh = p.freshness_secs.map_or("none yet".to_string(), |s| {
            format!("{s:.1}s old (PostgreSQL's clock: now minus its commit time)")
        });
        println!("Replication slot lag: {lag}");
        println!("Newest transaction change in silver and gold: {fresh}");
        println!(
            "{:<17} {:>12} {:>12} {:>12}",
            "TABLE", "POSTGRES", "BRONZE", "SILVER"
        );
        let cell = |v: Option<String>| v.unwrap_or_else(|| "?".to_string());
        for t in &p.tables {
            println!(
                "{:<17} {:>12} {:>12} {:>12}",
                t.table,
                cell(t.source.map(|n| n.to_string())),
                cell(t.bronze.map(|n| n.to_string())),
                cell(t.silver.map(|n| n.to_string()))
            );
        }
    }
    if let Some(p) = &report.pipeline {
        println!(
            "{:<36} {:>12} {:>12} {:>10} {:>10}",
            "TOPIC (CLICKHOUSE GROUP LAG)", "END OFFSET", "COMMITTED", "LAG", "EVENTS/S"
        );
        for t in &p.topics {
            if let Some(err) = &t.error {
                println!("{:<36} {err}", t.topic);
                continue;
            }
            let cell = |v: Option<i64>| v.map_or("-".to_string(), |n| n.to_string());
            println!(
                "{:<36} {:>12} {:>12} {:>10} {:>10}",
                t.topic,
                cell(t.end_offset),
                cell(t.committed_offset),
                cell(t.lag_events),
                t.events_per_sec
                    .map_or("-".to_string(), |r| format!("{r:.1}"))
            );
        }
    }
    if let Some(r) = &report.rates {
        let rate = |v: Option<f64>| v.map_or("?".to_string(), |r| format!("{r:.1}"));
        println!(
            "Last {:.1}s: PostgreSQL {} changes/s, Kafka {} events/s, bronze {} events/s, \
             silver {} rows/s",
            r.interval_secs,
            rate(r.postgres_changes_per_sec),
            rate(r.kafka_events_per_sec),
            rate(r.bronze_events_per_sec),
            rate(r.silver_rows_per_sec)
        );
    }
    match &report.credentials_file {
        Some(path) => println!("Credentials: {path}"),
        None => println!("Credentials: none yet (`findemo up` creates them)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_seconds_and_never_negative() {
        assert_eq!(age_secs(10_500, 9_000), 1.5);
        assert_eq!(age_secs(9_000, 10_500), 0.0);
    }

    #[test]
    fn rates_are_taken_over_the_interval() {
        let before = Counters {
            postgres_changes: Some(100.0),
            kafka_events: Some(50.0),
            bronze_events: Some(40.0),
            silver_rows: None,
            topics: vec![("s.public.t".into(), Some(50.0))],
        };
        let now = Counters {
            postgres_changes: Some(300.0),
            kafka_events: Some(250.0),
            bronze_events: Some(30.0),
            silver_rows: Some(10.0),
            topics: vec![("s.public.t".into(), Some(250.0))],
        };
        let rates = now.rates_since(&before, 2.0);
        assert_eq!(rates.postgres_changes_per_sec, Some(100.0));
        assert_eq!(rates.kafka_events_per_sec, Some(100.0));
        // A counter that went back (a table recreated) is not a negative rate.
        assert_eq!(rates.bronze_events_per_sec, Some(0.0));
        assert_eq!(rates.silver_rows_per_sec, None);
        assert_eq!(now.topic_rate("s.public.t", &before, 2.0), Some(100.0));
        assert_eq!(now.topic_rate("s.public.other", &before, 2.0), None);
    }

    fn service(name: &'static str, ready: bool) -> ServiceReport {
        ServiceReport {
            name,
            container: format!("s-{name}"),
            image: "img".into(),
            state: if ready { "running" } else { "exited" }.into(),
            ready,
            endpoint: "127.0.0.1:1".into(),
            detail: if ready { "ok" } else { "not running" }.into(),
        }
    }

    fn health(state: &str, tasks: &[&str], topic_error: Option<&str>) -> Health {
        let mut topic = crate::pipeline::TopicHealth {
            table: "raw_transactions",
            topic: "s.public.raw_transactions".into(),
            group: "s-clickhouse-raw_transactions".into(),
            end_offset: Some(10),
            committed_offset: Some(10),
            lag_events: Some(0),
            events_per_sec: None,
            error: None,
        };
        topic.error = topic_error.map(str::to_string);
        Health {
            connector: "s-postgres-source".into(),
            state: state.into(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            slot_lag_bytes: Some(0),
            tables: vec![],
            freshness_secs: None,
            postgres_changes: None,
            topics: vec![topic],
        }
    }

    #[test]
    fn the_first_broken_stage_in_the_data_direction_is_named() {
        let all = |down: &[&str]| -> Vec<ServiceReport> {
            ["postgres", "kafka", "clickhouse", "connect"]
                .into_iter()
                .map(|n| service(n, !down.contains(&n)))
                .collect()
        };
        let ok = health("RUNNING", &["RUNNING"], None);
        assert_eq!(first_broken(&all(&[]), Some(&ok)), None);

        let stage = |services: &[ServiceReport], h: Option<&Health>| {
            first_broken(services, h).map(|b| b.stage)
        };
        assert_eq!(
            stage(&all(&["clickhouse", "postgres"]), None),
            Some("postgres")
        );
        assert_eq!(stage(&all(&["clickhouse", "kafka"]), None), Some("kafka"));
        assert_eq!(stage(&all(&["clickhouse"]), None), Some("clickhouse"));

        let missing = health("not registered", &[], None);
        let broken = first_broken(&all(&[]), Some(&missing)).expect("broken");
        assert_eq!(broken.stage, "connector");
        assert!(
            broken.reason.contains("not registered (no task)"),
            "{broken:?}"
        );
        let failed = health("RUNNING", &["FAILED"], None);
        assert_eq!(stage(&all(&[]), Some(&failed)), Some("connector"));

        let lost = health("RUNNING", &["RUNNING"], Some("unknown topic"));
        let broken = first_broken(&all(&[]), Some(&lost)).expect("broken");
        assert_eq!(broken.stage, "kafka");
        assert!(broken.reason.contains("unknown topic"), "{broken:?}");
    }
}
