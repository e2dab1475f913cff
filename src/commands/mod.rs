//! One file per subcommand, each with `pub async fn run(args, &Ctx)`.

mod bench;
mod dashboard;
mod down;
mod generate;
mod logs;
mod reset;
mod status;
mod up;
pub(crate) mod verify;

use std::process::ExitCode;

use crate::app::Ctx;
use crate::cli::Command;
use crate::clients::postgres::PgError;
use crate::config::ConfigError;
use crate::docker::DockerError;
use crate::generate::GenerateError;
use crate::migrate::MigrateError;
use crate::pipeline::PipelineError;
use crate::stack::StackError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    External(#[from] crate::external::ExternalError),
    #[error(transparent)]
    Endpoint(#[from] crate::endpoints::EndpointError),
    #[error(transparent)]
    Bench(#[from] crate::bench::BenchError),
    #[error("{0}")]
    Refused(String),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    #[error("interrupted; what was done so far stays, and running the command again continues from there")]
    Interrupted,
}

impl From<DockerError> for CommandError {
    fn from(err: DockerError) -> Self {
        CommandError::Stack(err.into())
    }
}

impl From<PgError> for CommandError {
    fn from(err: PgError) -> Self {
        CommandError::Pipeline(err.into())
    }
}

impl From<MigrateError> for CommandError {
    fn from(err: MigrateError) -> Self {
        CommandError::Pipeline(err.into())
    }
}

impl From<StateError> for CommandError {
    fn from(err: StateError) -> Self {
        CommandError::Stack(err.into())
    }
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    match command {
        Command::Up(args) => up::run(args, ctx).await,
        Command::Status(args) => status::run(args, ctx).await,
        Command::Generate(args) => generate::run(args, ctx).await,
        Command::Down(args) => down::run(args, ctx).await,
        Command::Reset(args) => reset::run(args, ctx).await,
        Command::Verify(args) => verify::run(args, ctx).await,
        Command::Logs(args) => logs::run(args, ctx).await,
        Command::Dashboard(args) => dashboard::run(args, ctx).await,
        Command::Bench(args) => bench::run(args, ctx).await,
    }
}
