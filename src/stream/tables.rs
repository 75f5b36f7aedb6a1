//! The stream's Parquet outputs under `--data DIR`, all append-only and
//! readable by `adlens sql --data DIR` while the stream runs:
//!
//! - `scored/date=YYYY-MM-DD/hour=HH/`: one row per scored record;
//! - `cluster_windows/date=YYYY-MM-DD/`: per processing-time window and
//!   cluster, the records, outliers and distance sum seen. Each process writes
//!   its own rows at every checkpoint, so one window can have several rows:
//!   sum them (see `sql/examples/cluster_windows.sql`);
//! - `dead_letters/date=YYYY-MM-DD/`: every record refused, with its reason;
//! - `topic_events/date=YYYY-MM-DD/`: with `--online`, each topic's birth and
//!   death (see [`crate::model::online`]).
//!
//! Files are closed (and so become visible) at each checkpoint, just before
//! the Kafka offsets are committed: a crash loses no committed record. The
//! tables' names and columns live in [`crate::layout`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::datatypes::SchemaRef;

use super::Scored;
use super::decode::Envelope;
use crate::layout::{
    CLUSTER_WINDOWS, DEAD_LETTERS, SCORED, TOPIC_EVENTS, cluster_windows_schema,
    dead_letters_schema, scored_schema, topic_events_schema,
};
use crate::model::online::TopicEvent;
use crate::reject::RejectReason;
use crate::writer::{ParquetSink, SinkOptions};

#[derive(Debug, Default, Clone, Copy)]
struct WindowCount {
    records: i64,
    outliers: i64,
    distance_sum: f64,
}

/// A refused record on its way to `dead_letters/`.
#[derive(Debug)]
pub struct Refusal<'a> {
    pub message: &'a Envelope,
    pub reason: RejectReason,
    pub detail: &'a str,
}

/// The tables of one stream process.
#[derive(Debug)]
pub struct StreamTables {
    scored: ParquetSink,
    windows: ParquetSink,
    dead: ParquetSink,
    events: ParquetSink,
    window_micros: i64,
    counts: BTreeMap<(i64, u32, String), WindowCount>,
}

impl StreamTables {
    /// Opens the tables under `dir`; file names carry `process` so several
    /// processes (and restarts) never collide.
    pub fn open(dir: &Path, process: &str, window_secs: u64) -> anyhow::Result<Self> {
        let options = SinkOptions {
            row_group_rows: 65_536,
            ..SinkOptions::default()
        };
        let sink = |table: &str, schema: SchemaRef, partitions: &[&str]| {
            ParquetSink::new(
                &dir.join(table),
                process,
                schema,
                partitions,
                options.clone(),
            )
        };
        Ok(Self {
            scored: sink(SCORED, scored_schema(), &["date", "hour"])?,
            windows: sink(CLUSTER_WINDOWS, cluster_windows_schema(), &["date"])?,
            dead: sink(DEAD_LETTERS, dead_letters_schema(), &["date"])?,
            events: sink(TOPIC_EVENTS, topic_events_schema(), &["date"])?,
            window_micros: (window_secs.max(1) * 1_000_000) as i64,
            counts: BTreeMap::new(),
        })
    }

    /// Appends scored rows (processed at `now`, microseconds) and counts them
    /// into the window `now` falls in.
    pub fn append_scored(
        &mut self,
        scored: &Scored,
        messages: &[Envelope],
        version: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let n = scored.campaign_id.len();
        let window = now - now.rem_euclid(self.window_micros);
        for i in 0..n {
            let count = self
                .counts
                .entry((window, scored.cluster[i], version.to_string()))
                .or_default();
            count.records += 1;
            count.outliers += i64::from(scored.outlier[i]);
            count.distance_sum += f64::from(scored.distance[i]);
        }
        let (date, hour) = date_hour(now);
        let mut columns: Vec<(&str, ArrayRef)> = vec![
            (
                "campaign_id",
                Arc::new(Int64Array::from(scored.campaign_id.clone())),
            ),
            (
                "processed_at",
                Arc::new(TimestampMicrosecondArray::from(vec![now; n])),
            ),
            (
                "cluster_id",
                Arc::new(UInt32Array::from(scored.cluster.clone())),
            ),
            (
                "distance",
                Arc::new(Float32Array::from(scored.distance.clone())),
            ),
            (
                "outlier",
                Arc::new(BooleanArray::from(scored.outlier.clone())),
            ),
            (
                "model_version",
                Arc::new(StringArray::from(vec![version; n])),
            ),
            (
                "kafka_partition",
                Arc::new(Int32Array::from_iter_values(
                    scored.index.iter().map(|i| messages[*i].partition),
                )),
            ),
            (
                "kafka_offset",
                Arc::new(Int64Array::from_iter_values(
                    scored.index.iter().map(|i| messages[*i].offset),
                )),
            ),
            ("date", Arc::new(StringArray::from(vec![date.as_str(); n]))),
            ("hour", Arc::new(StringArray::from(vec![hour.as_str(); n]))),
        ];
        for name in ["created_at", "domain", "host", "title", "lang"] {
            if let Some(column) = scored.rows.column_by_name(name) {
                columns.push((name, Arc::clone(column)));
            }
        }
        let batch = RecordBatch::try_from_iter(columns)?;
        self.scored.write(&batch)?;
        Ok(())
    }

    /// Appends refused records.
    pub fn append_refused(&mut self, refused: &[Refusal<'_>], now: i64) -> anyhow::Result<()> {
        if refused.is_empty() {
            return Ok(());
        }
        let n = refused.len();
        let (date, _) = date_hour(now);
        let payloads = refused.iter().map(|r| {
            let text = String::from_utf8_lossy(&r.message.payload);
            Some(text.chars().take(2000).collect::<String>())
        });
        let batch = RecordBatch::try_from_iter(vec![
            (
                "processed_at",
                Arc::new(TimestampMicrosecondArray::from(vec![now; n])) as ArrayRef,
            ),
            (
                "kafka_partition",
                Arc::new(Int32Array::from_iter_values(
                    refused.iter().map(|r| r.message.partition),
                )),
            ),
            (
                "kafka_offset",
                Arc::new(Int64Array::from_iter_values(
                    refused.iter().map(|r| r.message.offset),
                )),
            ),
            (
                "reason",
                Arc::new(StringArray::from_iter_values(
                    refused.iter().map(|r| r.reason.as_str()),
                )),
            ),
            (
                "detail",
                Arc::new(StringArray::from_iter_values(
                    refused.iter().map(|r| r.detail),
                )),
            ),
            ("payload", Arc::new(StringArray::from_iter(payloads))),
            ("date", Arc::new(StringArray::from(vec![date.as_str(); n]))),
        ])?;
        self.dead.write(&batch)?;
        Ok(())
    }

    /// Appends online topics' births and deaths (at `now`, microseconds).
    pub fn append_events(
        &mut self,
        events: &[TopicEvent],
        version: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let n = events.len();
        let (date, _) = date_hour(now);
        let batch = RecordBatch::try_from_iter(vec![
            (
                "event_time",
                Arc::new(TimestampMicrosecondArray::from(vec![now; n])) as ArrayRef,
            ),
            (
                "event",
                Arc::new(StringArray::from_iter_values(
                    events.iter().map(|e| e.event.name()),
                )),
            ),
            (
                "cluster_id",
                Arc::new(UInt32Array::from_iter_values(
                    events.iter().map(|e| e.topic),
                )),
            ),
            (
                "size",
                Arc::new(Int64Array::from_iter_values(
                    events.iter().map(|e| e.size as i64),
                )),
            ),
            (
                "label",
                Arc::new(StringArray::from_iter_values(
                    events.iter().map(|e| e.label.as_str()),
                )),
            ),
            (
                "batch",
                Arc::new(Int64Array::from_iter_values(
                    events.iter().map(|e| e.batch as i64),
                )),
            ),
            (
                "model_version",
                Arc::new(StringArray::from(vec![version; n])),
            ),
            ("date", Arc::new(StringArray::from(vec![date.as_str(); n]))),
        ])?;
        self.events.write(&batch)?;
        Ok(())
    }

    /// Writes the window counts gathered since the last checkpoint and closes
    /// every open file, making everything appended so far durable and visible.
    pub fn checkpoint(&mut self) -> anyhow::Result<()> {
        if !self.counts.is_empty() {
            let counts = std::mem::take(&mut self.counts);
            self.windows.write(&self.windows_batch(counts)?)?;
        }
        self.scored.flush()?;
        self.windows.flush()?;
        self.dead.flush()?;
        self.events.flush()?;
        Ok(())
    }

    fn windows_batch(
        &self,
        counts: BTreeMap<(i64, u32, String), WindowCount>,
    ) -> anyhow::Result<RecordBatch> {
        let keys: Vec<&(i64, u32, String)> = counts.keys().collect();
        let values: Vec<&WindowCount> = counts.values().collect();
        let window_secs = self.window_micros / 1_000_000;
        Ok(RecordBatch::try_from_iter(vec![
            (
                "window_start",
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    keys.iter().map(|k| k.0),
                )) as ArrayRef,
            ),
            (
                "window_secs",
                Arc::new(Int64Array::from(vec![window_secs; keys.len()])),
            ),
            (
                "cluster_id",
                Arc::new(UInt32Array::from_iter_values(keys.iter().map(|k| k.1))),
            ),
            (
                "model_version",
                Arc::new(StringArray::from_iter_values(
                    keys.iter().map(|k| k.2.as_str()),
                )),
            ),
            (
                "records",
                Arc::new(Int64Array::from_iter_values(
                    values.iter().map(|v| v.records),
                )),
            ),
            (
                "outliers",
                Arc::new(Int64Array::from_iter_values(
                    values.iter().map(|v| v.outliers),
                )),
            ),
            (
                "distance_sum",
                Arc::new(Float64Array::from_iter_values(
                    values.iter().map(|v| v.distance_sum),
                )),
            ),
            (
                "mean_distance",
                Arc::new(Float64Array::from_iter_values(
                    values
                        .iter()
                        .map(|v| v.distance_sum / v.records.max(1) as f64),
                )),
            ),
            (
                "date",
                Arc::new(StringArray::from_iter_values(
                    keys.iter().map(|k| date_hour(k.0).0),
                )),
            ),
        ])?)
    }

    /// Closes everything (a final checkpoint).
    pub fn close(mut self) -> anyhow::Result<()> {
        self.checkpoint()?;
        self.scored.finish()?;
        self.windows.finish()?;
        self.dead.finish()?;
        self.events.finish()?;
        Ok(())
    }
}

/// `("2026-11-22", "06")` for a UTC time in microseconds.
fn date_hour(micros: i64) -> (String, String) {
    let t = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    (t.format("%Y-%m-%d").to_string(), t.format("%H").to_string())
}
