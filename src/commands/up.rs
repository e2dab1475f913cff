//! `findemo up`: from nothing (or anything) to four ready services.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use crate::app::Ctx;
use crate::cli::UpArgs;
use crate::commands::CommandError;
use crate::docker::{Engine, Labels};
use crate::service::{network_name, Service};
use crate::stack::{self, Action, Ready, Stack, StackError};
use crate::state;

pub async fn run(_args: UpArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let started = Instant::now();
    let config = &ctx.config;
    let printer = &ctx.printer;
    let engine = Engine::connect().await?;
    printer.line(format!(
        "Stack '{}' on Docker at {} (config: {})",
        config.stack,
        engine.host(),
        config.source
    ));
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

    let mut pg = crate::postgres::connect(config, &creds).await?;
    let todo = crate::postgres::pending(&pg).await?;
    let schema_changed = !todo.is_empty();
    for file in todo {
        let task = printer.task("schema", file.path);
        crate::postgres::apply(&mut pg, file).await?;
        task.done(&format!("applied {}", file.path));
    }

    println!();
    if !schema_changed && ready.iter().all(|r| r.action == Action::AlreadyUp) {
        println!(
            "Stack '{}' is already up: all {} services ready, nothing to do.",
            config.stack,
            ready.len()
        );
    } else {
        println!(
            "Stack '{}' is up: {} services ready in {:.1}s.",
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
        "Credentials: {} (readable by you only)",
        ctx.credentials_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
