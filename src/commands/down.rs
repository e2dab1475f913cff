//! `findemo down`: stop the containers, keep every volume.

use std::process::ExitCode;

use crate::app::Ctx;
use crate::cli::DownArgs;
use crate::commands::CommandError;
use crate::docker::Engine;
use crate::service::Service;

pub async fn run(args: DownArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let engine = Engine::connect().await?;
    let grace = i32::try_from(args.grace).unwrap_or(i32::MAX);
    let mut stopped = 0;
    // Reverse start order: Connect lets go of the broker before the broker stops.
    for service in Service::ALL.iter().rev() {
        let container = service.container_name(&ctx.config.stack);
        match engine.inspect(&container).await? {
            Some(status) if status.running => {
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
