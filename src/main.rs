//! findemo: stands up and drives a real-time financial data warehouse on one machine.
//!
//! This file only parses the command line, sets up diagnostics, runs the command and
//! turns its outcome into an exit code.

mod app;
mod bench;
mod catalogue;
mod cli;
mod clients;
mod commands;
mod config;
mod dashboard;
mod docker;
mod endpoints;
mod external;
mod generate;
mod migrate;
mod pipeline;
mod probe;
mod progress;
mod retry;
mod service;
mod stack;
mod state;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`findemo status | head -1`) instead of failing on the broken pipe.
    // SAFETY: called first thing, before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    clients::tls::install_provider();
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
    let outcome = runtime.block_on(app::run(cli));
    // Do not wait for a blocking read (reset's prompt) that Ctrl-C cut short.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(code) => code,
        Err(commands::CommandError::Interrupted) => {
            eprintln!("findemo: {}", commands::CommandError::Interrupted);
            ExitCode::from(130)
        }
        Err(err) => {
            // Each layer's message already carries its cause and what to try.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
