//! `findemo dashboard`: serves the live dashboard until Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::app::Ctx;
use crate::cli::DashboardArgs;
use crate::commands::CommandError;
use crate::dashboard;
use crate::probe::WaitFor;
use crate::service::Service;

pub async fn run(args: DashboardArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let config = &ctx.config;
    let endpoints = ctx.endpoints()?;
    if !args.bind.is_loopback() {
        ctx.printer.line(format!(
            "warning: listening on {}: anyone who can reach this machine can read the \
             stack's data and run queries on it",
            args.bind
        ));
    }
    // Say what is down now; the page says it too, and recovers once `up` has run.
    let probes = Service::ALL.map(|service| {
        let wait = WaitFor::of(service, &endpoints);
        async move { (service, wait.probe().await) }
    });
    for (service, probe) in futures_util::future::join_all(probes).await {
        if let Err(reason) = probe {
            ctx.printer.line(format!(
                "warning: {service} is not answering ({reason}); run `findemo up`, the page \
                 shows it until then"
            ));
        }
    }

    let addr = SocketAddr::new(args.bind, args.port.unwrap_or(config.dashboard_port));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let open = args.open;
    dashboard::serve(config.clone(), endpoints, addr, shutdown, |local| {
        let url = format!("http://{local}/");
        println!("findemo dashboard on {url} (Ctrl-C to stop)");
        if open {
            if let Err(err) = std::process::Command::new("xdg-open").arg(&url).spawn() {
                eprintln!("could not open a browser ({err}); open {url} yourself");
            }
        }
    })
    .await
    .map_err(|e| CommandError::Refused(e.to_string()))?;
    ctx.printer.line("dashboard stopped");
    Ok(ExitCode::SUCCESS)
}
