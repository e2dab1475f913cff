//! `findemo status`: is every service running and ready, does the connector run, and
//! how far along is the warehouse? A table, or JSON for scripts.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::app::Ctx;
use crate::cli::StatusArgs;
use crate::commands::CommandError;
use crate::docker::Engine;
use crate::migrate::PipelineFiles;
use crate::pipeline::{Health, Pipeline};
use crate::service::Service;
use crate::state;

#[derive(Debug, Serialize)]
struct Report {
    stack: String,
    healthy: bool,
    docker_host: String,
    credentials_file: Option<String>,
    services: Vec<ServiceReport>,
    /// Present once every service is ready.
    pipeline: Option<Health>,
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
    let engine = Engine::connect().await?;
    if !args.watch {
        let report = gather(ctx, &engine).await?;
        show(&report, args.json, true)?;
        return Ok(if report.healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let clear = std::io::stdout().is_terminal() && !args.json;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let report = gather(ctx, &engine).await?;
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

/// Asks Docker, every service and the pipeline how they are.
async fn gather(ctx: &Ctx, engine: &Engine) -> Result<Report, CommandError> {
    let config = &ctx.config;
    let creds = state::load(&ctx.credentials_path)?;

    let reports = Service::ALL.map(|service| {
        let creds = creds.as_ref();
        async move {
            let container = service.container_name(&config.stack);
            let status = engine.inspect(&container).await?;
            let (state, running) = match &status {
                Some(s) => (s.state.clone(), s.running),
                None => ("missing".to_string(), false),
            };
            let (ready, detail) = match (running, creds) {
                (false, _) => (false, "not running".to_string()),
                (true, None) => (false, "no credentials file: run `findemo up`".to_string()),
                (true, Some(creds)) => match service.wait_for(config, creds).probe().await {
                    Ok(detail) => (true, detail),
                    Err(reason) => (false, reason.to_string()),
                },
            };
            Ok::<_, CommandError>(ServiceReport {
                name: service.name(),
                container,
                image: config.service(service).image.clone(),
                state,
                ready,
                endpoint: format!("127.0.0.1:{}", config.service(service).port),
                detail,
            })
        }
    });
    let services = futures_util::future::try_join_all(reports).await?;
    let all_ready = services.iter().all(|s| s.ready);
    let pipeline = match (&creds, all_ready) {
        (Some(creds), true) => {
            // Health reads no files; a broken pipeline.files folder must not hide it.
            let files = ctx
                .pipeline_files()
                .unwrap_or_else(|_| PipelineFiles::builtin());
            let pipeline = Pipeline {
                config,
                creds,
                files: &files,
                printer: &ctx.printer,
            };
            Some(pipeline.health().await)
        }
        _ => None,
    };
    Ok(Report {
        stack: config.stack.clone(),
        healthy: all_ready && pipeline.as_ref().is_some_and(Health::running),
        docker_host: engine.host().to_string(),
        credentials_file: creds
            .is_some()
            .then(|| ctx.credentials_path.display().to_string()),
        services,
        pipeline,
    })
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
    println!(
        "{:<11} {:<9} {:<6} {:<16} DETAIL",
        "SERVICE", "STATE", "READY", "ENDPOINT"
    );
    for s in &report.services {
        println!(
            "{:<11} {:<9} {:<6} {:<16} {}",
            s.name,
            s.state,
            if s.ready { "yes" } else { "no" },
            s.endpoint,
            s.detail
        );
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
        let fresh = p
            .freshness_secs
            .map_or("none yet".to_string(), |s| format!("{s:.1}s old"));
        println!(
            "Replication slot lag: {lag}; newest transaction change in silver and gold: {fresh}"
        );
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
    match &report.credentials_file {
        Some(path) => println!("Credentials: {path}"),
        None => println!("Credentials: none yet (`findemo up` creates them)"),
    }
}
