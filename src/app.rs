//! What every command shares: the checked config, the printer, the stack's state
//! file, and Ctrl-C handling around the command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::commands::{self, CommandError};
use crate::config::{Config, Overrides, Runtime};
use crate::endpoints::Endpoints;
use crate::migrate::{MigrateError, PipelineFiles};
use crate::progress::Printer;
use crate::state;

/// Context handed to every command.
pub struct Ctx {
    pub config: Config,
    pub printer: Printer,
    pub credentials_path: PathBuf,
}

impl Ctx {
    /// The stack's credentials, which `up` writes; an error saying so when missing.
    pub fn credentials(&self) -> Result<crate::state::Credentials, CommandError> {
        state::load(&self.credentials_path)?.ok_or_else(|| {
            CommandError::Refused(format!(
                "stack '{}' has no credentials yet: run `findemo up` first",
                self.config.stack
            ))
        })
    }

    /// Where the services are and how to sign in, from the runtime: on Docker the
    /// stack's generated credentials (an error before the first `up`), with
    /// `runtime: external` demo.yaml's endpoints and the passwords they name.
    pub fn endpoints(&self) -> Result<Endpoints, CommandError> {
        match &self.config.runtime {
            Runtime::Docker => Ok(Endpoints::docker(&self.config, &self.credentials()?)),
            Runtime::External(ext) => Ok(Endpoints::external(ext, &self.config.stack)?),
        }
    }

    /// The pipeline's SQL and connector files: the configured folder, or the built-in
    /// ones.
    pub fn pipeline_files(&self) -> Result<PipelineFiles, MigrateError> {
        match &self.config.pipeline_files {
            Some(dir) => PipelineFiles::from_dir(dir),
            None => Ok(PipelineFiles::builtin()),
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode, CommandError> {
    let overrides = Overrides {
        stack: cli.stack.clone(),
        ready_timeout: match &cli.command {
            Command::Up(args) => args.timeout.map(Duration::from_secs),
            _ => None,
        },
    };
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    let credentials_path = state::credentials_path(&config.state_dir, &config.stack);
    let ctx = Ctx {
        config,
        printer: Printer::new(cli.quiet),
        credentials_path,
    };
    if matches!(
        cli.command,
        Command::Generate(_) | Command::Logs(_) | Command::Status(_) | Command::Dashboard(_)
    ) {
        // These handle Ctrl-C themselves: generate stops after the batch in flight,
        // and Ctrl-C is how `logs --follow`, `status --watch` and `dashboard` end.
        return commands::run(cli.command, &ctx).await;
    }
    tokio::select! {
        result = commands::run(cli.command, &ctx) => result,
        _ = tokio::signal::ctrl_c() => Err(CommandError::Interrupted),
    }
}
