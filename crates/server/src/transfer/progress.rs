//! Progress of an import or an export on stderr.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Progress on stderr: a bar on a terminal (rows done, rows/s, ETA), otherwise a plain
/// line every few seconds, so a log of a scripted run shows it is alive.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

/// How often a plain progress line is written when stderr is not a terminal.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// `total` is the work the bar counts (bytes of the file, or contacts), when known;
    /// `template` is how indicatif shows it.
    pub(super) fn new(total: Option<u64>, template: &str) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total.unwrap_or_default());
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            started: now,
            last_line: now,
        }
    }

    /// Reports `position` (in the bar's unit), the rows done and failed so far.
    pub(super) fn update(&mut self, position: u64, rows: u64, failed: u64) {
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let message = format!("{rows} rows, {rate:.0} rows/s, {failed} failed");
        match &self.bar {
            Some(bar) => {
                bar.set_position(position);
                bar.set_message(message);
            }
            None if self.last_line.elapsed() >= PROGRESS_LINE_EVERY => {
                self.last_line = Instant::now();
                eprintln!("{message}");
            }
            None => {}
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
