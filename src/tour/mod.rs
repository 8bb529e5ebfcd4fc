//! `latentlab tour`: the lecture in one command. PCA → autoencoder → VAE → GAN on one dataset,
//! each trained and measured by the same commands a user would type, then one HTML report.
//!
//! A tour is a list of [`Stage`]s, each one `latentlab` command line writing into its own place
//! under the tour's folder. A stage that finished leaves a marker (`.tour/<name>.json`) holding its
//! command line; a re-run skips it while the command is the same, its outputs exist and nothing it
//! reads was redone since. The report is rebuilt every time from what the folders hold.

pub mod figures;
pub mod plan;
pub mod report;
pub mod stage;
pub mod summary;

use std::time::Instant;

use indicatif::{MultiProgress, ProgressStyle};

use crate::error::{Error, Result};
use crate::fsutil::write_json;
use crate::ui;

pub use plan::{Budget, FidFeatures, TourOptions, plan};
pub use stage::{Stage, StageMarker, StageOutcome};
pub use summary::Summary;

use crate::ui::format_duration;
use stage::{finished, marker_path, now_seconds};

/// Runs one `latentlab` command line (the words after `latentlab`) in this process. The CLI
/// hands it in, so the tour needs no knowledge of how command lines are parsed.
pub type CommandRunner<'a> = &'a dyn Fn(&[String]) -> Result<()>;

/// Runs (or skips) every stage with `run_command`, then writes `summary.json` and
/// `report.html`.
pub fn run(options: &TourOptions, run_command: CommandRunner) -> Result<Summary> {
    let stages = plan(options)?;
    let markers = options.out.join(".tour");
    std::fs::create_dir_all(&markers).map_err(|e| Error::io(&markers, e))?;
    let started = Instant::now();
    let multi = (!options.quiet).then(MultiProgress::new);
    let tour_bar = match &multi {
        Some(multi) => multi.add(indicatif::ProgressBar::new(stages.len() as u64)),
        None => indicatif::ProgressBar::hidden(),
    };
    tour_bar.set_style(
        ProgressStyle::with_template("tour [{bar:20}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    ui::install(multi);
    let result = run_stages(options, &stages, &tour_bar, started, run_command);
    tour_bar.finish_and_clear();
    ui::install(None);
    let outcomes = result?;

    let seconds = started.elapsed().as_secs_f64();
    let summary = summary::collect(options, &outcomes, seconds)?;
    figures::draw(options, &summary)?;
    write_json(&options.out.join("summary.json"), &summary)?;
    report::write(&options.out, &summary)?;
    if !options.quiet {
        let ran = outcomes.iter().filter(|o| o.status == "ran").count();
        ui::say(&format!(
            "tour ({} budget) done in {:.0} s: {ran} stages ran, {} skipped; report: {}",
            options.budget.name(),
            seconds,
            outcomes.len() - ran,
            options.out.join("report.html").display()
        ));
    }
    Ok(summary)
}

fn run_stages(
    options: &TourOptions,
    stages: &[Stage],
    tour_bar: &indicatif::ProgressBar,
    started: Instant,
    run_command: CommandRunner,
) -> Result<Vec<StageOutcome>> {
    let mut outcomes = Vec::new();
    // ETA from this invocation's pace against the estimates of the stages it ran.
    let (mut estimated_done, mut seconds_done) = (0.0, 0.0);
    for (i, stage) in stages.iter().enumerate() {
        let command = stage.command_line();
        let previous = if options.force {
            None
        } else {
            finished(&options.out, stage)
        };
        if let Some(marker) = previous {
            outcomes.push(StageOutcome {
                name: stage.name.clone(),
                command,
                status: "skipped".into(),
                seconds: marker.seconds,
            });
            tour_bar.set_position(i as u64 + 1);
            continue;
        }
        let remaining: f64 = stages[i..].iter().map(|s| s.estimate_seconds).sum();
        let pace = if estimated_done > 0.0 {
            seconds_done / estimated_done
        } else {
            1.0
        };
        let eta = format_duration(remaining * pace);
        let elapsed = format_duration(started.elapsed().as_secs_f64());
        // "stage k/n" names the stage now running, counted from 1.
        tour_bar.set_position(i as u64 + 1);
        tour_bar.set_message(format!(
            "stage {}/{} {}: elapsed {elapsed}, eta {eta}",
            i + 1,
            stages.len(),
            stage.name
        ));
        if !options.quiet {
            ui::log(&format!(
                "── tour stage {}/{}: {command}  (elapsed {elapsed}, eta {eta})",
                i + 1,
                stages.len()
            ));
        }
        let stage_started = Instant::now();
        let mut args = stage.args.clone();
        if options.quiet {
            args.push("--quiet".into());
        }
        run_command(&args)?;
        let seconds = stage_started.elapsed().as_secs_f64();
        estimated_done += stage.estimate_seconds;
        seconds_done += seconds;
        let marker = StageMarker {
            command: command.clone(),
            finished_at: now_seconds(),
            seconds,
        };
        write_json(&marker_path(&options.out, &stage.name), &marker)?;
        outcomes.push(StageOutcome {
            name: stage.name.clone(),
            command,
            status: "ran".into(),
            seconds,
        });
    }
    Ok(outcomes)
}
