//! The training progress bar: epoch, step, loss parts, images/s, ETA.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over one epoch's steps; hidden with `--quiet` (and by indicatif off a terminal).
pub struct EpochBar {
    bar: ProgressBar,
    started: Instant,
    images: usize,
}

impl EpochBar {
    pub fn new(epoch: usize, epochs: usize, steps: usize, done: usize, quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(steps as u64)
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {epoch}/{epochs}"));
        bar.set_position(done as u64);
        Self {
            bar,
            started: Instant::now(),
            images: 0,
        }
    }

    /// Advances one step of `images` images with the step's loss parts.
    pub fn step(&mut self, images: usize, parts: &[(&'static str, f64)]) {
        self.images += images;
        let rate = self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let mut message = String::new();
        for (name, value) in parts {
            message.push_str(&format!("{name} {value:.2} "));
        }
        message.push_str(&format!("{rate:.0} img/s"));
        self.bar.set_message(message);
        self.bar.inc(1);
    }

    /// A log line that does not tear the bar.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
