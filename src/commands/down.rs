//! `findemo down`: stop the containers, keep every volume (with `runtime: external`,
//! nothing to stop).

use std::process::ExitCode;

use crate::app::Ctx;
use crate::cli::DownArgs;
use crate::commands::CommandError;
use crate::config::Runtime;
use crate::docker::Engine;
use crate::service::Service;

pub async fn run(args: DownArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    if let Runtime::External(_) = ctx.config.runtime {
        println!(
            "Stack '{}' runs on external services (runtime: external): findemo started \
             nothing there, so there is nothing to stop. The connector keeps streaming; \
             `findemo reset` removes what findemo created.",
            ctx.config.stack
        );
        return Ok(ExitCode::SUCCESS);
    }
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
