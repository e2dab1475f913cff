//! findemo: stands up and drives a real-time financial data warehouse on one machine.
//!
//! This file only parses the command line, sets up diagnostics, runs the command and
//! turns its outcome into an exit code.

mod app;
mod cli;
mod clickhouse;
mod commands;
mod config;
mod connect;
mod docker;
mod generate;
mod kafka;
mod migrate;
mod pipeline;
mod postgres;
mod probe;
mod progress;
mod service;
mod stack;
mod state;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "findemo=debug,info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FINDEMO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("findemo: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            // Each layer's message already carries its cause and what to try.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
