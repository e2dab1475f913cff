//! `findemo down`: stop the containers, keep every volume.

use std::process::ExitCode;

use crate::app::Ctx;
use crate::cli::DownArgs;
use crate::commands::CommandError;
use crate::docker::Engine;
use crate::service::Service;

/// Detaches ClickHouse's Kafka tables so their consumers leave their groups before
/// ClickHouse stops (ClickHouse 18.16 aborts on shutdown without leaving them). A
/// member that never left holds its partitions on the broker until its session
/// times out: the next `up` would wait for that. Best effort: a ClickHouse that does
/// not answer is stopped all the same.
async fn let_consumers_leave(ctx: &Ctx) {
    let Ok(creds) = ctx.credentials() else { return };
    let ch = crate::clients::clickhouse::ClickHouse::new(&ctx.config, &creds);
    if let Err(e) = crate::pipeline::detach_kafka_tables(&ch).await {
        tracing::debug!("detaching the Kafka tables: {e}");
    }
}

pub async fn run(args: DownArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let engine = Engine::connect().await?;
    let grace = i32::try_from(args.grace).unwrap_or(i32::MAX);
    let mut stopped = 0;
    // Reverse start order: Connect lets go of the broker before the broker stops.
    for service in Service::ALL.iter().rev() {
        let container = service.container_name(&ctx.config.stack);
        match engine.inspect(&container).await? {
            Some(status) if status.running => {
                if *service == Service::Clickhouse {
                    let task = ctx.printer.task(
                        "clickhouse",
                        "letting its Kafka consumers leave their groups",
                    );
                    let_consumers_leave(ctx).await;
                    task.done("consumers left");
                }
                let task = ctx.printer.task(service.name(), "stopping");
                engine.stop(&container, grace).await?;
                task.done("stopped");
                stopped += 1;
            }
            _ => {}
        }
    }
    if stopped == 0 {
        println!("Stack '{}' has nothing running.", ctx.config.stack);
    } else {
        println!(
            "Stack '{}' stopped ({stopped} containers); data kept. `findemo up` resumes it.",
            ctx.config.stack
        );
    }
    Ok(ExitCode::SUCCESS)
}
