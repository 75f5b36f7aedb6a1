//! What `adlens stream` reports on stderr: a status line every
//! `--status-secs` (records/s since the last one, lag, batch latencies) and
//! a summary when it stops, whose `records/s` `make bench` reads.

use std::time::{Duration, Instant};

/// Totals for the status lines and the final summary.
#[derive(Debug, Default)]
pub struct Totals {
    pub consumed: u64,
    pub scored: u64,
    pub dead_lettered: u64,
    pub outliers: u64,
    /// Each micro-batch's time from its hand-over for cleaning to its
    /// results sent to the producer and appended to the tables.
    pub latencies_ms: Vec<f64>,
    /// The model versions used, in order.
    pub models: Vec<String>,
    /// From the first record received to the last batch acknowledged.
    pub first_record: Option<Instant>,
    pub last_done: Option<Instant>,
}

impl Totals {
    /// The line printed when the stream stops.
    pub fn summary(&self) -> String {
        let busy = match (self.first_record, self.last_done) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        format!(
            "stream: done: {} consumed in {busy:.1}s ({:.0} records/s), {} scored, {} dead-lettered, {} outliers, {} batches (p50 {:.0} ms, p99 {:.0} ms), models {}",
            self.consumed,
            self.consumed as f64 / busy.max(1e-9),
            self.scored,
            self.dead_lettered,
            self.outliers,
            self.latencies_ms.len(),
            percentile(&self.latencies_ms, 0.5),
            percentile(&self.latencies_ms, 0.99),
            self.models.join(" -> ")
        )
    }
}

/// Periodic status line on stderr.
#[derive(Debug)]
pub struct Status {
    every: Option<Duration>,
    last: Instant,
    consumed_then: u64,
    latencies_seen: usize,
}

impl Status {
    /// A status line every `secs` seconds; none for 0.
    pub fn new(secs: u64) -> Self {
        Self {
            every: (secs > 0).then(|| Duration::from_secs(secs)),
            last: Instant::now(),
            consumed_then: 0,
            latencies_seen: 0,
        }
    }

    /// Whether a status line is due.
    pub fn due(&self) -> bool {
        self.every.is_some_and(|every| self.last.elapsed() >= every)
    }

    /// Prints the records since the last line, with `lag` (negative when
    /// unknown) and the model version in use.
    pub fn print(&mut self, totals: &Totals, lag: i64, model_version: &str) {
        let secs = self.last.elapsed().as_secs_f64();
        let rate = (totals.consumed - self.consumed_then) as f64 / secs.max(1e-9);
        let recent = &totals.latencies_ms[self.latencies_seen..];
        let lag = if lag < 0 {
            "?".to_string()
        } else {
            lag.to_string()
        };
        eprintln!(
            "stream: {} records ({rate:.0}/s), {} dead-lettered, lag {lag}, batch p50 {:.0} ms p99 {:.0} ms, model {model_version}",
            totals.consumed,
            totals.dead_lettered,
            percentile(recent, 0.5),
            percentile(recent, 0.99),
        );
        self.last = Instant::now();
        self.consumed_then = totals.consumed;
        self.latencies_seen = totals.latencies_ms.len();
    }
}

/// The `q` quantile (nearest rank) of unsorted values; 0 when empty.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
