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
//! the Kafka offsets are committed: a crash loses no committed record.

use crate::reject::RejectReason;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use super::Scored;
use super::decode::Envelope;
use crate::model::online::TopicEvent;
use crate::writer::{ParquetSink, SinkOptions};

/// Table of scored records.
pub const SCORED: &str = "scored";
/// Table of per-window cluster counts.
pub const CLUSTER_WINDOWS: &str = "cluster_windows";
/// Table of refused records.
pub const DEAD_LETTERS: &str = "dead_letters";
/// Table of online topics' births and deaths.
pub const TOPIC_EVENTS: &str = "topic_events";

fn timestamp(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, None),
        false,
    )
}

fn scored_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("campaign_id", DataType::Int64, false),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        timestamp("processed_at"),
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("distance", DataType::Float32, false),
        Field::new("outlier", DataType::Boolean, false),
        Field::new("model_version", DataType::Utf8, false),
        Field::new("domain", DataType::Utf8, true),
        Field::new("host", DataType::Utf8, true),
        Field::new("title", DataType::Utf8, true),
        Field::new("lang", DataType::Utf8, true),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
    ]))
}

fn windows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        timestamp("window_start"),
        Field::new("window_secs", DataType::Int64, false),
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("model_version", DataType::Utf8, false),
        Field::new("records", DataType::Int64, false),
        Field::new("outliers", DataType::Int64, false),
        Field::new("distance_sum", DataType::Float64, false),
        Field::new("mean_distance", DataType::Float64, false),
    ]))
}

fn dead_letters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        timestamp("processed_at"),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, true),
        Field::new("payload", DataType::Utf8, true),
    ]))
}

fn topic_events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        timestamp("event_time"),
        Field::new("event", DataType::Utf8, false),
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("size", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("batch", DataType::Int64, false),
        Field::new("model_version", DataType::Utf8, false),
    ]))
}

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
            windows: sink(CLUSTER_WINDOWS, windows_schema(), &["date"])?,
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
