//! `findemo reset`: remove everything carrying the stack's label, and its credentials;
//! with `runtime: external`, exactly what findemo recorded creating on the services.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::app::Ctx;
use crate::cli::ResetArgs;
use crate::commands::CommandError;
use crate::config::Runtime;
use crate::docker::Engine;
use crate::endpoints::Endpoints;
use crate::external;
use crate::pipeline::Deployed;
use crate::service::Service;
use crate::state;

pub async fn run(args: ResetArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    if let Runtime::External(_) = ctx.config.runtime {
        return on_external(args, ctx).await;
    }
    let stack = &ctx.config.stack;
    let engine = Engine::connect().await?;
    let found = engine.labelled(stack).await?;
    if found.is_empty() && state::load(&ctx.credentials_path)?.is_none() {
        println!("Stack '{stack}' has nothing to remove.");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        let (containers, volumes, networks) = found.counts();
        confirm(
            stack,
            vec![format!(
                "{containers} containers, {volumes} volumes (all data), {networks} networks"
            )],
        )
        .await?;
    }

    remove_pipeline(ctx, &engine).await;
    for container in &found.containers {
        let task = ctx.printer.task("remove", container);
        engine.remove_container(container).await?;
        task.done(&format!("container {container}"));
    }
    for volume in &found.volumes {
        engine.remove_volume(volume).await?;
        ctx.printer
            .line(format!("{:<11} volume {volume}", "remove"));
    }
    for network in &found.networks {
        engine.remove_network(network).await?;
        ctx.printer
            .line(format!("{:<11} network {network}", "remove"));
    }
    state::remove(&ctx.credentials_path)?;

    let left = engine.labelled(stack).await?;
    if !left.is_empty() {
        return Err(CommandError::Refused(format!(
            "some of stack '{stack}' could not be removed: containers {:?}, volumes {:?}, networks {:?}",
            left.containers, left.volumes, left.networks
        )));
    }
    println!(
        "Stack '{stack}' removed: {} containers, {} volumes, {} networks, and its credentials.",
        found.containers.len(),
        found.volumes.len(),
        found.networks.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Deletes the connector, the replication slot and the publication while their
/// services still run. Best effort: the volumes that hold them go next anyway.
async fn remove_pipeline(ctx: &Ctx, engine: &Engine) {
    let Ok(Some(creds)) = state::load(&ctx.credentials_path) else {
        return;
    };
    for service in [Service::Postgres, Service::Connect] {
        let container = service.container_name(&ctx.config.stack);
        if !matches!(engine.inspect(&container).await, Ok(Some(s)) if s.running) {
            return;
        }
    }
    let endpoints = Endpoints::docker(&ctx.config, &creds);
    let pipeline = Deployed {
        config: &ctx.config,
        endpoints: &endpoints,
    };
    let task = ctx
        .printer
        .task("connector", "removing connector, slot and publication");
    match tokio::time::timeout(Duration::from_secs(60), pipeline.remove()).await {
        Ok(Ok(())) => task.done("connector, replication slot and publication removed"),
        Ok(Err(err)) => task.failed(&format!("{err} (continuing)")),
        Err(_) => task.failed("timed out (continuing)"),
    }
}

/// `runtime: external`: removes what findemo recorded creating, and nothing else.
async fn on_external(args: ResetArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let stack = &ctx.config.stack;
    let path = external::record_path(&ctx.config.state_dir, stack);
    let mut record = external::load(&path)?;
    if record.is_empty() {
        println!(
            "Stack '{stack}' has nothing to remove: findemo recorded creating nothing on its \
             services ({} is absent).",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let endpoints = ctx.endpoints()?;
    let listed = record.describe();
    if args.yes {
        for line in &listed {
            ctx.printer.line(format!("{:<11} {line}", "remove"));
        }
    } else {
        confirm(stack, listed).await?;
    }
    external::remove(&path, &mut record, &endpoints, &ctx.printer).await?;
    println!(
        "Stack '{stack}' removed from its services: everything findemo created there, and \
         nothing else. The services keep running."
    );
    Ok(ExitCode::SUCCESS)
}

/// Lists what goes and asks for the stack's name on the terminal (on a blocking
/// thread, so that Ctrl-C still ends findemo).
async fn confirm(stack: &str, what: Vec<String>) -> Result<(), CommandError> {
    let stack = stack.to_string();
    tokio::task::spawn_blocking(move || ask(&stack, &what))
        .await
        .map_err(|e| CommandError::Refused(format!("confirmation failed: {e}")))?
}

fn ask(stack: &str, what: &[String]) -> Result<(), CommandError> {
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::Refused(format!(
            "reset deletes all data of stack '{stack}'; pass --yes to confirm (stdin is not a terminal)"
        )));
    }
    eprintln!("This deletes stack '{stack}':");
    for line in what {
        eprintln!("  {line}");
    }
    eprint!("Type the stack name to confirm: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != stack {
        return Err(CommandError::Refused(
            "reset cancelled; nothing removed".into(),
        ));
    }
    Ok(())
}
