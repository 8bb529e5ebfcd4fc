//! What the user sees while a command works: progress bars, spinners and log lines. The training bar shows epoch, step, loss parts, images/s and ETA.
//!
//! A command that runs other commands (the tour) installs a [`MultiProgress`] with [`install`]:
//! every bar made by [`new_bar`] then stacks under its own, and [`log`] / [`say`] print above the
//! bars instead of tearing them.

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

static STACK: Mutex<Option<MultiProgress>> = Mutex::new(None);

fn stack() -> Option<MultiProgress> {
    STACK.lock().map(|s| s.clone()).unwrap_or(None)
}

/// Makes every later bar stack under `multi`'s; `None` goes back to plain bars.
pub fn install(multi: Option<MultiProgress>) {
    if let Ok(mut slot) = STACK.lock() {
        *slot = multi;
    }
}

/// A bar of `len` steps, or a hidden one with `quiet`. Off a terminal indicatif draws nothing.
pub(crate) fn new_bar(len: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    match stack() {
        Some(multi) => multi.add(bar),
        None => bar,
    }
}

/// A spinner for a step with no countable progress; hidden with `--quiet` or off a terminal.
pub(crate) fn spinner(message: &str, quiet: bool) -> ProgressBar {
    let bar = new_bar(None, quiet).with_message(message.to_string());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("static template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A log line on stderr that does not tear the bars.
pub fn log(line: &str) {
    match stack() {
        Some(multi) => multi.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// A result line on stdout that does not tear the bars.
pub fn say(line: &str) {
    match stack() {
        Some(multi) => multi.suspend(|| println!("{line}")),
        None => println!("{line}"),
    }
}

/// A bar over one epoch's steps; hidden with `--quiet` (and by indicatif off a terminal).
pub(crate) struct EpochBar {
    bar: ProgressBar,
    started: Instant,
    images: usize,
}

impl EpochBar {
    pub fn new(epoch: usize, epochs: usize, steps: usize, done: usize, quiet: bool) -> Self {
        let bar = new_bar(Some(steps as u64), quiet);
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

/// `1 h 05 min`, `4 min 10 s`, `12 s`.
pub(crate) fn format_duration(seconds: f64) -> String {
    if seconds < 9.95 {
        return format!("{:.1} s", seconds.max(0.0));
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// `12,345`: a count with thousands separators.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(0.42), "0.4 s");
        assert_eq!(format_duration(12.4), "12 s");
        assert_eq!(format_duration(250.0), "4 min 10 s");
        assert_eq!(format_duration(3900.0), "1 h 05 min");
    }
}
