//! `findemo up`: from nothing (or anything) to four ready services and a flowing
//! pipeline.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use crate::app::Ctx;
use crate::cli::UpArgs;
use crate::commands::CommandError;
use crate::config::Runtime;
use crate::docker::{Engine, Labels};
use crate::endpoints::Endpoints;
use crate::external;
use crate::pipeline::{Consumers, Pipeline, Plan};
use crate::service::{network_name, Service};
use crate::stack::{self, Action, Ready, Stack, StackError};
use crate::state;

pub async fn run(args: UpArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    match ctx.config.runtime {
        Runtime::Docker => on_docker(args, ctx).await,
        Runtime::External(_) => on_external(args, ctx).await,
    }
}

/// The Docker runtime: containers first, then the pipeline on them.
async fn on_docker(args: UpArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let started = Instant::now();
    let config = &ctx.config;
    let printer = &ctx.printer;
    let files = ctx.pipeline_files()?;
    let engine = Engine::connect().await?;
    printer.line(format!(
        "Stack '{}' on Docker at {} (config: {})",
        config.stack,
        engine.host(),
        config.source
    ));
    if args.dry_run {
        return dry_run(ctx, &engine, &files).await;
    }
    let creds = state::load_or_create(&ctx.credentials_path)?;
    let endpoints = Endpoints::docker(config, &creds);
    let stack = Stack {
        engine: &engine,
        config,
        creds: &creds,
        endpoints: &endpoints,
        printer,
    };

    // Preflight: every port a stopped or missing service will publish must be free.
    let mut missing_images = BTreeSet::new();
    for service in Service::ALL {
        let spec = stack.spec(service);
        let running = engine
            .inspect(&spec.container)
            .await?
            .is_some_and(|s| s.running);
        if !running {
            stack::check_port_free(service, config.service(service).port)?;
        }
        if !engine.image_exists(&spec.image).await? {
            missing_images.insert(spec.image);
        }
    }

    for image in &missing_images {
        let task = printer.bytes("pull");
        task.message(image);
        engine
            .pull(image, |p| {
                task.position(p.current, p.total);
                task.message(&format!("{image} {}", p.status));
            })
            .await?;
        task.done(&format!("pulled {image}"));
    }

    let labels = Labels::stack(&config.stack);
    engine
        .ensure_network(&network_name(&config.stack), &labels)
        .await?;
    for service in Service::ALL {
        for (volume, _) in stack.spec(service).volumes {
            engine.ensure_volume(&volume, &labels).await?;
        }
    }

    // Independent services start together; Connect waits for its broker.
    let (postgres, clickhouse, kafka_connect) = tokio::try_join!(
        stack.bring_up(Service::Postgres),
        stack.bring_up(Service::Clickhouse),
        async {
            let kafka = stack.bring_up(Service::Kafka).await?;
            let connect = stack.bring_up(Service::Connect).await?;
            Ok::<_, StackError>((kafka, connect))
        },
    )?;
    let ready: Vec<Ready> = vec![postgres, kafka_connect.0, clickhouse, kafka_connect.1];

    let pipeline = Pipeline {
        config,
        endpoints: &endpoints,
        files: &files,
        printer,
        stack: Some(&stack),
        repairs: Cell::new(0),
    };
    let flow = flow(&pipeline).await?;
    let untouched = ready.iter().all(|r| r.action == Action::AlreadyUp);
    let lines = ready
        .iter()
        .map(|r| {
            format!(
                "  {:<11} {:<16} {:>5.1}s  {}",
                r.service.name(),
                endpoints.address(r.service).trim_start_matches("http://"),
                r.took.as_secs_f64(),
                r.detail
            )
        })
        .collect();
    summarize(ctx, started, untouched && !flow.changed, lines, &flow);
    println!(
        "Credentials: {} (readable by you only)",
        ctx.credentials_path.display()
    );
    next_steps(ctx);
    Ok(ExitCode::SUCCESS)
}

/// The external runtime: each endpoint asked and checked before anything changes, then
/// the pipeline, with what findemo creates recorded for `reset`.
async fn on_external(args: UpArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let started = Instant::now();
    let (config, printer) = (&ctx.config, &ctx.printer);
    let files = ctx.pipeline_files()?;
    printer.line(format!(
        "Stack '{}' on external services (runtime: external, config: {})",
        config.stack, config.source
    ));
    let endpoints = ctx.endpoints()?;
    let reached = external::reach(&endpoints, printer).await?;
    let record_path = external::record_path(&config.state_dir, &config.stack);
    let mut record = external::load(&record_path)?;
    external::preflight(&config.stack, &endpoints, &record).await?;
    let pipeline = Pipeline {
        config,
        endpoints: &endpoints,
        files: &files,
        printer,
        stack: None,
        repairs: Cell::new(0),
    };
    if args.dry_run {
        println!("Dry run: nothing is changed. Every service answers and can carry the pipeline.");
        print_plan(&pipeline.plan().await?);
        return Ok(ExitCode::SUCCESS);
    }

    // Recorded before any change, so that an `up` cut short leaves nothing unrecorded.
    let before = external::inventory(&config.stack, &endpoints).await?;
    external::merge(
        &mut record,
        &config.stack,
        &before,
        &external::candidates(&config.stack),
    );
    external::save(&record_path, &record)?;
    let flow = flow(&pipeline).await;
    // What else appeared (files of `pipeline.files` may create more); a service that
    // cannot be asked now leaves the record as it was written above.
    if let Ok(after) = external::inventory(&config.stack, &endpoints).await {
        external::merge(&mut record, &config.stack, &before, &after);
        external::save(&record_path, &record)?;
    }
    let flow = flow?;

    let lines = reached
        .iter()
        .map(|(service, detail)| {
            format!(
                "  {:<11} {}  {detail}",
                service.name(),
                endpoints.address(*service)
            )
        })
        .collect();
    summarize(ctx, started, !flow.changed, lines, &flow);
    println!(
        "What findemo created there is listed in {}; `findemo reset` removes that and nothing else.",
        record_path.display()
    );
    next_steps(ctx);
    Ok(ExitCode::SUCCESS)
}

/// What setting up the pipeline found.
struct Flow {
    /// Whether anything was applied, registered or repaired.
    changed: bool,
    canary: std::time::Duration,
    consumers: Consumers,
}

/// Applies the pipeline, sends the canary through it and reads the consumers.
async fn flow(pipeline: &Pipeline<'_>) -> Result<Flow, CommandError> {
    let applied = pipeline.apply().await?;
    let canary = pipeline.canary(pipeline.config.canary_timeout).await?;
    let consumers = pipeline.consumers().await?;
    Ok(Flow {
        changed: applied || pipeline.repairs.get() > 0,
        canary,
        consumers,
    })
}

fn summarize(ctx: &Ctx, started: Instant, nothing_done: bool, services: Vec<String>, flow: &Flow) {
    let stack = &ctx.config.stack;
    println!();
    if nothing_done {
        println!(
            "Stack '{stack}' is already up: all {} services ready and the pipeline in place, nothing to do.",
            services.len()
        );
    } else {
        println!(
            "Stack '{stack}' is up: {} services ready and the pipeline flowing in {:.1}s.",
            services.len(),
            started.elapsed().as_secs_f64()
        );
    }
    for line in services {
        println!("{line}");
    }
    println!(
        "A change in PostgreSQL reached ClickHouse silver in {:.1}s.",
        flow.canary.as_secs_f64()
    );
    println!("{}", flow.consumers.summary());
}

fn next_steps(ctx: &Ctx) {
    println!(
        "Next: `findemo generate` to write transactions, `findemo dashboard` to watch them \
         live on http://127.0.0.1:{}/",
        ctx.config.dashboard_port
    );
}

fn print_plan(plan: &Plan) {
    for (db, list) in [
        ("PostgreSQL", &plan.postgres),
        ("ClickHouse", &plan.clickhouse),
    ] {
        if list.is_empty() {
            println!("  {db}: every SQL file already applied");
        }
        for path in list {
            println!("  {db}: would apply {path}");
        }
    }
    println!("  connector: {}", plan.connector);
}

/// Says what `up` would do: which containers it would create or start, which SQL
/// files it would apply, and what it would do with the connector.
async fn dry_run(
    ctx: &Ctx,
    engine: &Engine,
    files: &crate::migrate::PipelineFiles,
) -> Result<ExitCode, CommandError> {
    let config = &ctx.config;
    let mut all_running = true;
    println!("Dry run: nothing is changed.");
    for service in Service::ALL {
        let container = service.container_name(&config.stack);
        let what = match engine.inspect(&container).await? {
            None => "would be created and started",
            Some(s) if !s.running => "would be started",
            Some(_) => "is running",
        };
        all_running &= what == "is running";
        println!("  {:<11} {container} {what}", service.name());
    }
    let creds = state::load(&ctx.credentials_path)?;
    let plan = match (all_running, creds) {
        (true, Some(creds)) => {
            let endpoints = Endpoints::docker(config, &creds);
            let pipeline = Pipeline {
                config,
                endpoints: &endpoints,
                files,
                printer: &ctx.printer,
                stack: None,
                repairs: Cell::new(0),
            };
            pipeline.plan().await?
        }
        _ => {
            let paths =
                |f: &[crate::migrate::Migration]| f.iter().map(|m| m.path.clone()).collect();
            Plan {
                postgres: paths(&files.postgres),
                clickhouse: paths(&files.clickhouse),
                connector: "register",
            }
        }
    };
    print_plan(&plan);
    Ok(ExitCode::SUCCESS)
}
