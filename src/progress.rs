//! How long work shows itself: spinners and bars on a terminal, one plain line per
//! step otherwise, nothing with `--quiet`. Progress goes to stderr; results to stdout.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone)]
pub struct Printer {
    multi: MultiProgress,
    tty: bool,
    quiet: bool,
}

impl Printer {
    pub fn new(quiet: bool) -> Printer {
        let tty = std::io::stderr().is_terminal() && !quiet;
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Printer {
            multi: MultiProgress::with_draw_target(target),
            tty,
            quiet,
        }
    }

    /// A line of progress (stderr), kept above any live bars.
    pub fn line(&self, text: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.tty {
            let _ = self.multi.println(text.as_ref());
        } else {
            eprintln!("{}", text.as_ref());
        }
    }

    /// A unit of work with a spinner: `label` stays, the message changes.
    pub fn task(&self, label: &str, message: &str) -> Task {
        let bar = self.tty.then(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {prefix:<11.bold} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(label.to_string());
            bar.set_message(message.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if !self.tty {
            self.line(format!("{label}: {message}"));
        }
        Task {
            bar,
            label: label.to_string(),
            printer: self.clone(),
        }
    }

    /// A download with a byte bar.
    pub fn bytes(&self, label: &str) -> Task {
        let bar = self.tty.then(|| {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner:.cyan} {prefix:<11.bold} [{bar:30}] {bytes}/{total_bytes} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Task {
            bar,
            label: label.to_string(),
            printer: self.clone(),
        }
    }
}

/// One live line of progress.
pub struct Task {
    bar: Option<ProgressBar>,
    label: String,
    printer: Printer,
}

impl Task {
    pub fn message(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    pub fn position(&self, current: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(current);
        }
    }

    /// Ends the task with a final line that stays on screen.
    pub fn done(self, message: &str) {
        self.finish(&format!("{:<11} {message}", self.label));
    }

    pub fn failed(self, message: &str) {
        self.finish(&format!("{:<11} FAILED: {message}", self.label));
    }

    fn finish(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            self.printer.multi.remove(bar);
        }
        self.printer.line(line);
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // A task dropped on an error path must not leave a spinner drawn.
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
