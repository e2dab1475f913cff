//! `findemo up`: from nothing (or anything) to four ready services and a flowing
//! pipeline.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use crate::app::Ctx;
use crate::cli::UpArgs;
use crate::commands::CommandError;
use crate::docker::{Engine, Labels};
use crate::pipeline::Pipeline;
use crate::service::{network_name, Service};
use crate::stack::{self, Action, Ready, Stack, StackError};
use crate::state;

pub async fn run(args: UpArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
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
    let stack = Stack {
        engine: &engine,
        config,
        creds: &creds,
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
        creds: &creds,
        files: &files,
        printer,
        stack: Some(&stack),
        repairs: Cell::new(0),
    };
    let pipeline_changed = pipeline.apply().await?;
    let canary = pipeline.canary(config.canary_timeout).await?;
    let consumers = pipeline.consumers().await?;

    println!();
    let untouched = ready.iter().all(|r| r.action == Action::AlreadyUp);
    if !pipeline_changed && untouched && pipeline.repairs.get() == 0 {
        println!(
            "Stack '{}' is already up: all {} services ready and the pipeline in place, nothing to do.",
            config.stack,
            ready.len()
        );
    } else {
        println!(
            "Stack '{}' is up: {} services ready and the pipeline flowing in {:.1}s.",
            config.stack,
            ready.len(),
            started.elapsed().as_secs_f64()
        );
    }
    for r in &ready {
        println!(
            "  {:<11} 127.0.0.1:{:<6} {:>5.1}s  {}",
            r.service.name(),
            config.service(r.service).port,
            r.took.as_secs_f64(),
            r.detail
        );
    }
    println!(
        "A change in PostgreSQL reached ClickHouse silver in {:.1}s.",
        canary.as_secs_f64()
    );
    println!("{}", consumers.summary());
    println!(
        "Credentials: {} (readable by you only)",
        ctx.credentials_path.display()
    );
    println!(
        "Next: `findemo generate` to write transactions, `findemo dashboard` to watch them \
         live on http://127.0.0.1:{}/",
        config.dashboard_port
    );
    Ok(ExitCode::SUCCESS)
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
    let (postgres, clickhouse, connector) = match (all_running, creds) {
        (true, Some(creds)) => {
            let pipeline = Pipeline {
                config,
                creds: &creds,
                files,
                printer: &ctx.printer,
                stack: None,
                repairs: Cell::new(0),
            };
            let plan = pipeline.plan().await?;
            (plan.postgres, plan.clickhouse, plan.connector)
        }
        _ => {
            let paths =
                |f: &[crate::migrate::Migration]| f.iter().map(|m| m.path.clone()).collect();
            (paths(&files.postgres), paths(&files.clickhouse), "register")
        }
    };
    for (db, list) in [("PostgreSQL", postgres), ("ClickHouse", clickhouse)] {
        if list.is_empty() {
            println!("  {db}: every SQL file already applied");
        }
        for path in list {
            println!("  {db}: would apply {path}");
        }
    }
    println!("  connector: {connector}");
    Ok(ExitCode::SUCCESS)
}
