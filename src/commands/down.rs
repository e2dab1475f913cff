//! `findemo down`: stop the containers, keep every volume.

use std::process::ExitCode;

use crate::app::Ctx;
use crate::cli::DownArgs;
use crate::commands::CommandError;
use crate::docker::Engine;
use crate::service::Service;

/// Connect commits its offsets every 5 s (and Debezium sends a heartbeat as often),
/// then Debezium confirms them to the slot.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(6);
const SETTLE_MAX: std::time::Duration = std::time::Duration::from_secs(20);

/// Waits (bounded) until the replication slot's confirmed position has stood still for
/// an offset-commit interval, or 20 s, so Connect's stored offsets cover what it
/// streamed. (Debezium is sometimes seen filtering the stream for good after
/// `down`/`up`; this wait does not prevent that, see README's test bed limits.)
async fn let_connect_commit(ctx: &Ctx) {
    let Ok(creds) = ctx.credentials() else { return };
    let Ok(pg) = crate::postgres::connect(&ctx.config, &creds).await else {
        return;
    };
    let slot = crate::pipeline::slot_name(&ctx.config.stack);
    let started = std::time::Instant::now();
    let mut last: Option<String> = None;
    let mut since = std::time::Instant::now();
    while started.elapsed() < SETTLE_MAX {
        let now = pg
            .query_opt(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .ok()
            .flatten()
            .and_then(|row| row.get::<_, Option<String>>(0));
        if now.is_none() {
            return;
        }
        if now != last {
            last = now;
            since = std::time::Instant::now();
        } else if since.elapsed() >= SETTLE {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
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
                if *service == Service::Connect {
                    let task = ctx.printer.task("connect", "letting it commit its offsets");
                    let_connect_commit(ctx).await;
                    task.done("offsets committed");
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
