//! A one-line progress bar on stderr: redrawn in place on a terminal, a line every few
//! seconds in a log.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct ProgressBar {
    label: String,
    total: u64,
    started: Instant,
    tty: bool,
    last_draw: Option<Instant>,
}

impl ProgressBar {
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        Self {
            label: label.into(),
            total: total.max(1),
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            last_draw: None,
        }
    }

    /// Draws `done` of the total; on a log only every 2 s.
    pub fn update(&mut self, done: u64) {
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        if self.last_draw.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let line = self.render(done);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// Final state, then a newline.
    pub fn finish(&mut self, done: u64) {
        let line = self.render(done);
        let prefix = if self.tty { "\r" } else { "" };
        eprintln!("{prefix}{line}");
    }

    fn render(&self, done: u64) -> String {
        const WIDTH: u64 = 30;
        let filled = (done.min(self.total) * WIDTH / self.total) as usize;
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let eta = if rate > 0.0 && done < self.total {
            format!("{:.0}s", (self.total - done) as f64 / rate)
        } else {
            "-".to_owned()
        };
        format!(
            "{:<14} [{}{}] {:>9}/{:<9} {:>7.0}/s  {:>6.1}s  eta {eta:<6}",
            self.label,
            "#".repeat(filled),
            "-".repeat(WIDTH as usize - filled),
            done,
            self.total,
            rate,
            secs,
        )
    }
}
