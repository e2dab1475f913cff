//! `findemo generate`: runs the in-process generator against the stack's PostgreSQL and
//! shows it working: a live line on a terminal (target vs achieved rate, rows, updates,
//! deletes, retries), a plain line every few seconds otherwise, and a summary on stdout.
//!
//! Ctrl-C is handled here, not raced in `app`: the first stops after the batch in
//! flight (so the summary is exact), a second one aborts at once.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::app::Ctx;
use crate::cli::GenerateArgs;
use crate::commands::CommandError;
use crate::config::{GeneratorFlags, Rate, WriteMethod};
use crate::endpoints::PgEndpoint;
use crate::generate::{self, Observer, Outcome, Plan, Session, Stats, Stop};
use crate::progress::{thousands, Printer};

/// How often the live line is redrawn, and a plain line printed without a terminal.
const REDRAW: Duration = Duration::from_millis(250);
const PLAIN_EVERY: Duration = Duration::from_secs(5);
/// The achieved rate shown live is measured over this window.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// Said when `generator.write: copy` is chosen, before the run and in its summary.
const COPY_RISK: &str = "generator.write is `copy`: COPY stores many rows at one WAL \
     position, and released Debezium connectors resume past such a position after a \
     Kafka Connect restart, losing the rest of its rows (fixed upstream in \
     debezium/debezium pull request 7531, not yet released). `findemo verify` shows \
     the loss. Remove `write: copy` for the safe default (`insert`).";

pub async fn run(args: GenerateArgs, ctx: &Ctx) -> Result<ExitCode, CommandError> {
    let flags = GeneratorFlags {
        seed: args.seed,
        rate: args.rate,
        accounts: args.accounts,
        merchants: args.merchants,
        ips: args.ips,
        fx_days: args.fx_days,
        write: args.write,
    };
    let plan = Plan {
        config: ctx.config.generator.with_flags(&flags)?,
        count: args.count,
        duration: args.duration,
        start_us: args.start,
    };
    let endpoints = ctx.endpoints()?;

    // First Ctrl-C: stop after the batch in flight. Second: abort now.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (abort_tx, mut abort_rx) = oneshot::channel();
    let printer = ctx.printer.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        let _ = stop_tx.send(true);
        printer.line("Ctrl-C: stopping after the batch in flight (Ctrl-C again to abort)");
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = abort_tx.send(());
        }
        // Keep stop_tx alive until the process ends.
        std::future::pending::<()>().await;
    });

    tokio::select! {
        result = generate(plan, &endpoints.postgres, ctx, stop_rx) => result,
        Ok(()) = &mut abort_rx => Err(CommandError::Interrupted),
    }
}

async fn generate(
    plan: Plan,
    pg: &PgEndpoint,
    ctx: &Ctx,
    stop: watch::Receiver<bool>,
) -> Result<ExitCode, CommandError> {
    let printer = &ctx.printer;
    let seed = plan.config.seed;
    let task = printer.task(
        "generate",
        "connecting to PostgreSQL, writing reference data",
    );
    let mut stopping = stop.clone();
    let session = tokio::select! {
        session = Session::open(pg, plan.clone()) => session?,
        _ = generate::stopped(&mut stopping) => return Err(CommandError::Interrupted),
    };
    let r = session.reference();
    let new = r.accounts.new + r.merchants.new + r.ips.new + r.fx_rates.new;
    printer.line(format!(
        "reference data: {} accounts, {} merchants, {} IPs, {} FX rates ({})",
        thousands(r.accounts.total),
        thousands(r.merchants.total),
        thousands(r.ips.total),
        thousands(r.fx_rates.total),
        if new == 0 {
            "all present".to_string()
        } else {
            format!("{} rows new", thousands(new))
        }
    ));
    if plan.config.write == WriteMethod::Copy {
        printer.line(format!("warning: {COPY_RISK}"));
    }
    let first = session.next_seq();
    if let Some(count) = plan.count.filter(|&c| first >= c) {
        task.done("nothing to do");
        println!(
            "Seed {seed} already has {} transactions (--count {}): nothing to do.\n\
             --count is the seed's total; raise it, or use another --seed.",
            thousands(first),
            thousands(count)
        );
        return Ok(ExitCode::SUCCESS);
    }
    if first > 0 {
        printer.line(format!(
            "seed {seed}: {} transactions already written; continuing from there",
            thousands(first)
        ));
    }

    let stats = Stats::default();
    let observer = PrinterObserver {
        printer: printer.clone(),
        retries: AtomicU64::new(0),
    };
    let live = std::io::stderr().is_terminal();
    let mut meter = Meter::new(plan.config.rate);
    let run = session.run(&stats, &observer, stop);
    tokio::pin!(run);
    let mut redraw = tokio::time::interval(if live { REDRAW } else { PLAIN_EVERY });
    redraw.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            _ = redraw.tick() => {
                let line = meter.line(&stats, &observer);
                if live {
                    task.message(&line);
                } else {
                    printer.line(format!("generate: {line}"));
                }
            }
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            task.failed(&meter.line(&stats, &observer));
            return Err(err.into());
        }
    };
    task.done(&meter.line(&stats, &observer));
    print_summary(&plan, &outcome, &stats);
    Ok(match outcome.stop {
        // Ctrl-C is how an open-ended run ends; a bounded one did not finish.
        Stop::Interrupted if plan.count.is_some() || plan.duration.is_some() => ExitCode::from(130),
        _ => ExitCode::SUCCESS,
    })
}

fn print_summary(plan: &Plan, outcome: &Outcome, stats: &Stats) {
    let seed = plan.config.seed;
    let rows = outcome.next_seq - outcome.first_seq;
    let secs = outcome.elapsed.as_secs_f64();
    let rate = if secs > 0.0 { rows as f64 / secs } else { 0.0 };
    println!(
        "Seed {seed}: wrote transactions {}..{} in {secs:.1}s: {} rows/s (target {}).",
        thousands(outcome.first_seq),
        thousands(outcome.next_seq),
        thousands(rate.round() as u64),
        target(plan.config.rate)
    );
    println!(
        "  inserted {} · updated {} (pending settled) · deleted {} · retries {}",
        thousands(Stats::get(&stats.inserted)),
        thousands(Stats::get(&stats.settled)),
        thousands(Stats::get(&stats.deleted)),
        thousands(Stats::get(&stats.retries)),
    );
    let why = match outcome.stop {
        Stop::Count => format!(
            "--count {} reached",
            thousands(plan.count.unwrap_or(outcome.next_seq))
        ),
        Stop::Duration => format!(
            "--duration {}s elapsed",
            plan.duration.unwrap_or_default().as_secs_f64()
        ),
        Stop::Interrupted => {
            "stopped by Ctrl-C; run the same command again to continue".to_string()
        }
    };
    println!("  {why}");
    if plan.config.write == WriteMethod::Copy {
        println!("  warning: {COPY_RISK}");
    }
}

fn target(rate: Rate) -> String {
    match rate {
        Rate::PerSecond(r) if r.fract() == 0.0 => format!("{}/s", thousands(r as u64)),
        Rate::PerSecond(r) => format!("{r}/s"),
        Rate::Max => "max".into(),
    }
}

/// Achieved rate over a sliding window, for the live line.
struct Meter {
    target: Rate,
    started: Instant,
    samples: VecDeque<(Instant, u64)>,
}

impl Meter {
    fn new(target: Rate) -> Meter {
        let now = Instant::now();
        Meter {
            target,
            started: now,
            samples: VecDeque::from([(now, 0)]),
        }
    }

    fn line(&mut self, stats: &Stats, observer: &PrinterObserver) -> String {
        let now = Instant::now();
        let inserted = Stats::get(&stats.inserted);
        self.samples.push_back((now, inserted));
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= RATE_WINDOW {
            self.samples.pop_front();
        }
        let (t0, n0) = self.samples[0];
        let secs = now.duration_since(t0).as_secs_f64();
        let rate = if secs > 0.0 {
            (inserted - n0) as f64 / secs
        } else {
            0.0
        };
        let elapsed = self.started.elapsed().as_secs();
        format!(
            "{} rows · {}/s (target {}) · updated {} · deleted {} · errors {} · {}:{:02}",
            thousands(inserted),
            thousands(rate.round() as u64),
            target(self.target),
            thousands(Stats::get(&stats.settled)),
            thousands(Stats::get(&stats.deleted)),
            observer.retries.load(Ordering::Relaxed),
            elapsed / 60,
            elapsed % 60
        )
    }
}

struct PrinterObserver {
    printer: Printer,
    retries: AtomicU64,
}

impl Observer for PrinterObserver {
    fn notice(&self, line: &str) {
        self.printer.line(format!("generate: {line}"));
    }

    fn retry(&self, _reason: &str) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_targets_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(12_345_678), "12,345,678");
        assert_eq!(target(Rate::PerSecond(5000.0)), "5,000/s");
        assert_eq!(target(Rate::PerSecond(0.5)), "0.5/s");
        assert_eq!(target(Rate::Max), "max");
    }
}
