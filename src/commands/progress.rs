//! Progress bars on stderr (hidden when stderr is not a terminal or with `--quiet`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ingest::Counters;

/// A bar over the input bytes that also shows records per second, redrawn
/// from shared counters by a small background task.
pub struct ReadProgress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl ReadProgress {
    pub fn start(total_bytes: u64, counters: Arc<Counters>, visible: bool) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg} ETA {eta}",
            )
            .expect("valid template"),
        );
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let records = counters.records.load(Ordering::Relaxed);
                    bar.set_position(counters.bytes.load(Ordering::Relaxed));
                    let rate = records as f64 / started.elapsed().as_secs_f64().max(1e-3);
                    bar.set_message(format!("{records} rows, {rate:.0} rows/s"));
                }
            })
        };
        Self { bar, ticker }
    }
}

impl Drop for ReadProgress {
    /// Clears the bar however the run ends, so an error message is not
    /// printed over a half-drawn bar.
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
