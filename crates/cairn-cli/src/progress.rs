//! Showing a run as it happens: a live spinner line in a terminal (indicatif),
//! plain lines otherwise. Either way, each stage's end is printed once.

use std::io::IsTerminal;
use std::time::Duration;

use cairn_engine::{LoadedWorkload, RunObserver};
use cairn_model::{LogLine, RunRecord, StageRecord, StageStatus};
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::{line_text, short_commit};

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    verbose: bool,
    total: usize,
    started: std::time::Instant,
    /// When printing JSON, only the final result goes to stdout.
    quiet: bool,
}

impl Progress {
    pub(crate) fn new(verbose: bool, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal() && !quiet;
        let bar = terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bar,
            verbose,
            total: 0,
            started: std::time::Instant::now(),
            quiet,
        }
    }

    fn say(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl RunObserver for Progress {
    fn run_created(&mut self, run: &RunRecord, stages: &[StageRecord], loaded: &LoadedWorkload) {
        self.total = stages.len();
        self.started = std::time::Instant::now();
        self.say(&format!(
            "run {} · {} at {} · chain `{}` ({} stages)",
            run.id,
            run.workload,
            short_commit(&run.commit),
            loaded.chain.name,
            stages.len()
        ));
    }

    fn stage_started(&mut self, stage: &StageRecord) {
        let prefix = format!("[{}/{}] {}", stage.index + 1, self.total, stage.name);
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(prefix);
                bar.reset_elapsed();
                bar.set_message("");
            }
            None if self.verbose => self.say(&format!("{prefix}: running")),
            None => {}
        }
    }

    fn log_line(&mut self, stage: &StageRecord, line: &LogLine) {
        if self.verbose {
            self.say(&format!("  {} | {}", stage.name, line_text(line)));
        } else if let Some(bar) = &self.bar {
            bar.set_message(line.display_text());
        }
    }

    fn stage_finished(&mut self, stage: &StageRecord) {
        let mark = match stage.status {
            StageStatus::Passed => "✓",
            StageStatus::Failed => "✗",
            StageStatus::Skipped => "–",
            _ => "?",
        };
        let took = self
            .bar
            .as_ref()
            .map(|b| format!(" {:.1}s", b.elapsed().as_secs_f64()))
            .unwrap_or_default();
        let reason = stage
            .reason
            .as_deref()
            .map(|r| format!(" · {r}"))
            .unwrap_or_default();
        self.say(&format!(
            "{mark} [{}/{}] {} {}{took}{reason}",
            stage.index + 1,
            self.total,
            stage.name,
            stage.status
        ));
    }
}
