//! `findemo logs SERVICE`: a service's container output (with `runtime: external`,
//! where to look instead).

use std::io::Write;
use std::process::ExitCode;

use futures_util::StreamExt;

use crate::app::Ctx;
use crate::cli::LogsArgs;
use crate::commands::CommandError;
use crate::config::Runtime;
use crate::docker::Engine;

pub async fn run(args: LogsArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    if let Runtime::External(_) = ctx.config.runtime {
        let address = ctx
            .endpoints()
            .map(|e| e.address(args.service))
            .unwrap_or_else(|_| format!("services.{}", args.service));
        return Err(CommandError::Refused(format!(
            "stack '{}' runs on external services (runtime: external): findemo runs no {} \
             container, so it has no logs of it. Its logs are where the team that runs {} \
             ({address}) keeps them; `findemo status` shows what findemo sees of it.",
            ctx.config.stack, args.service, args.service
        )));
    }
    let engine = Engine::connect().await?;
    let container = args.service.container_name(&ctx.config.stack);
    if engine.inspect(&container).await?.is_none() {
        return Err(CommandError::Refused(format!(
            "stack '{}' has no {} container; start it with `findemo up`",
            ctx.config.stack, args.service
        )));
    }
    let mut stream = std::pin::pin!(engine.logs(&container, args.tail, args.follow));
    let mut out = std::io::stdout().lock();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let chunk = tokio::select! {
            chunk = stream.next() => chunk,
            _ = &mut ctrl_c => None,
        };
        let Some(chunk) = chunk else { break };
        match out.write_all(chunk?.as_bytes()) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => break,
            other => other?,
        }
    }
    Ok(ExitCode::SUCCESS)
}
