//! `findemo status`: is every service running and ready? A table, or JSON for scripts.

use std::process::ExitCode;

use serde::Serialize;

use crate::app::Ctx;
use crate::cli::StatusArgs;
use crate::commands::CommandError;
use crate::docker::Engine;
use crate::service::Service;
use crate::state;

#[derive(Debug, Serialize)]
struct Report {
    stack: String,
    healthy: bool,
    docker_host: String,
    credentials_file: Option<String>,
    services: Vec<ServiceReport>,
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
    let config = &ctx.config;
    let engine = Engine::connect().await?;
    let creds = state::load(&ctx.credentials_path)?;

    let reports = Service::ALL.map(|service| {
        let engine = &engine;
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
    let report = Report {
        stack: config.stack.clone(),
        healthy: services.iter().all(|s| s.ready),
        docker_host: engine.host().to_string(),
        credentials_file: creds
            .is_some()
            .then(|| ctx.credentials_path.display().to_string()),
        services,
    };

    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?;
        println!("{json}");
    } else {
        print_table(&report);
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
    match &report.credentials_file {
        Some(path) => println!("Credentials: {path}"),
        None => println!("Credentials: none yet (`findemo up` creates them)"),
    }
}
