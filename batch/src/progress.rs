//! Scan progress: a progress bar on a terminal, a log line every few seconds otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::scan::ScanProgress;

/// A running progress display; stop it with [`ProgressDisplay::finish`].
#[derive(Debug)]
pub struct ProgressDisplay {
    task: JoinHandle<()>,
    bar: Option<ProgressBar>,
}

/// Starts showing `progress`: a bar when stderr is a terminal, log lines otherwise.
pub fn start(progress: Arc<ScanProgress>) -> ProgressDisplay {
    let started = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(progress.ranges_total.load(Ordering::Relaxed));
        bar.set_style(
            ProgressStyle::with_template("{spinner} scan [{bar:30}] {pos}/{len} token ranges  {msg}  {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar
    });
    let shown = bar.clone();
    let task = tokio::spawn(async move {
        let tick = if shown.is_some() {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        let mut interval = tokio::time::interval(tick);
        interval.tick().await;
        loop {
            interval.tick().await;
            let done = progress.ranges_done.load(Ordering::Relaxed);
            let total = progress.ranges_total.load(Ordering::Relaxed);
            let rows = progress.rows.load(Ordering::Relaxed);
            let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
            match &shown {
                Some(bar) => {
                    bar.set_length(total);
                    bar.set_position(done);
                    bar.set_message(format!("{rows} rows, {rate:.0} rows/s"));
                }
                None => tracing::info!(
                    ranges_done = done,
                    ranges_total = total,
                    rows,
                    rows_per_s = rate as u64,
                    "scanning"
                ),
            }
        }
    });
    ProgressDisplay { task, bar }
}

impl ProgressDisplay {
    /// Stops the display and clears the bar.
    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
