//! The command line: clap derive, one `Args` struct per subcommand. Doc comments are
//! the help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::service::Service;

/// Stand up and drive a real-time financial data warehouse on one machine:
/// PostgreSQL -> Debezium (Kafka Connect) -> Kafka -> ClickHouse.
#[derive(Debug, Parser)]
#[command(name = "findemo", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./demo.yaml if present, else built-in defaults]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "FINDEMO_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// Stack name: prefix of every container, volume and network (overrides demo.yaml)
    #[arg(long, global = true, env = "FINDEMO_STACK")]
    pub stack: Option<String>,

    /// Print only results and errors, no progress
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// More diagnostics on stderr (-v, -vv)
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the stack and its pipeline: check Docker and ports, pull missing images,
    /// start every service in order and wait until each is ready, apply the SQL files,
    /// register the Debezium connector, and prove a change reaches ClickHouse. Safe to
    /// run again: it repairs what is missing and leaves what runs alone.
    Up(UpArgs),
    /// Show every service's container state, readiness and endpoint. Exits non-zero
    /// when anything is not ready.
    Status(StatusArgs),
    /// Stop the stack's containers, keeping their data for the next `up`.
    Down(DownArgs),
    /// Remove everything the stack created: containers, volumes (all data), network
    /// and its generated credentials.
    Reset(ResetArgs),
    /// Wait until ClickHouse has caught up with PostgreSQL, then reconcile them per
    /// day (transaction counts and amount sums, source vs silver and vs gold) and per
    /// reference table. Exits 0 only when everything agrees.
    Verify(VerifyArgs),
    /// Show a service's container logs.
    Logs(LogsArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Seconds to wait for ClickHouse to catch up before reporting differences
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub timeout: u64,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Seconds to wait for each service to become ready [default: 180, or
    /// ready_timeout_secs in demo.yaml]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Show what would be created, applied and registered, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// Seconds each container gets to shut down before it is killed
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub grace: u32,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The service whose logs to show
    #[arg(value_enum)]
    pub service: Service,
    /// Number of lines from the end to show
    #[arg(long, short = 'n', default_value_t = 200)]
    pub tail: usize,
    /// Keep following new output
    #[arg(long, short)]
    pub follow: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_flags_are_rejected() {
        assert!(Cli::try_parse_from(["findemo", "up", "--timeout", "0"]).is_err());
        assert!(Cli::try_parse_from(["findemo", "logs", "nosuch"]).is_err());
        assert!(Cli::try_parse_from(["findemo", "up", "--bogus"]).is_err());
        let cli = Cli::try_parse_from(["findemo", "logs", "kafka", "-n", "5"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Logs(LogsArgs { tail: 5, .. })
        ));
    }
}
