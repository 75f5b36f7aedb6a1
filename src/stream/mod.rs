//! The parts of `adlens stream` below the Kafka loop: a micro-batch is received
//! on a task of its own ([`receive`]) and decoded
//! into `raw_campaigns` rows ([`decode`]), cleaned by the very SQL and UDFs
//! `preprocess` runs ([`Cleaner`]), scored with [`Model::score`] like `adlens
//! score` does ([`score`]), and appended to the Parquet tables of [`tables`];
//! [`watch`] swaps in a retrained model between micro-batches, and
//! [`checkpoint`] makes finished micro-batches durable before offsets are
//! committed; [`status`] reports progress.

pub mod checkpoint;
pub mod decode;
pub mod receive;
pub mod status;
pub mod tables;
pub mod watch;

use crate::reject::RejectReason;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{filter_record_batch, is_null};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use datafusion::datasource::MemTable;
use serde::Serialize;

use crate::engine::{self, CLEANED_VIEW, EngineConfig, PREPROCESS_SQL, RAW_TABLE};
use crate::model::Model;
use crate::model::features::TextColumns;
use crate::model::online::{Assignment, OnlineTopics};

/// Runs `sql/preprocess.sql` over micro-batches. Each call plans the view
/// in a session of its own (a few milliseconds), so the stream can clean the
/// next micro-batch while it still scores the last one.
#[derive(Debug, Clone)]
pub struct Cleaner {
    config: EngineConfig,
}

impl Cleaner {
    pub fn new(partitions: usize) -> datafusion::error::Result<Self> {
        let config = EngineConfig {
            partitions: partitions.max(1),
            ..EngineConfig::default()
        };
        // Fails here, at start-up, if the session cannot be built at all.
        engine::session(&config)?;
        Ok(Self { config })
    }

    /// The `cleaned_campaigns` rows of a `raw_campaigns` batch: one per row,
    /// with `reject_reason` set on those the rules refuse. The batch is split
    /// so the UDFs (language detection above all) run on every core.
    pub async fn clean(&self, raw: RecordBatch) -> datafusion::error::Result<Vec<RecordBatch>> {
        let rows = raw.num_rows();
        let chunk = rows.div_ceil(self.config.partitions).max(1);
        let parts: Vec<Vec<RecordBatch>> = (0..rows)
            .step_by(chunk)
            .map(|start| vec![raw.slice(start, chunk.min(rows - start))])
            .collect();
        let parts = if parts.is_empty() {
            vec![vec![]]
        } else {
            parts
        };
        let ctx = engine::session(&self.config)?;
        ctx.register_table(RAW_TABLE, Arc::new(MemTable::try_new(raw.schema(), parts)?))?;
        engine::run_statements(&ctx, PREPROCESS_SQL).await?;
        ctx.table(CLEANED_VIEW).await?.collect().await
    }
}

/// The kept rows of one cleaned batch with their scores.
#[derive(Debug)]
pub struct Scored {
    /// `cleaned_campaigns` rows that passed every rule.
    pub rows: RecordBatch,
    /// Index of each row's message in the micro-batch.
    pub index: Vec<usize>,
    pub campaign_id: Vec<i64>,
    /// Microseconds since the epoch.
    pub created_at: Vec<i64>,
    pub cluster: Vec<u32>,
    pub distance: Vec<f32>,
    pub outlier: Vec<bool>,
}

/// A record the cleaning rules refused, by message index.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub index: usize,
    pub reason: RejectReason,
    pub detail: String,
}

/// Splits cleaned batches into scored rows and refused ones, scoring the
/// batches in parallel (in their order). Outliers are rows farther from
/// their centroid than the cluster's training radius.
pub fn score(
    model: &Model,
    cleaned: &[RecordBatch],
) -> anyhow::Result<(Vec<Scored>, Vec<Refused>)> {
    use rayon::prelude::*;
    let parts = cleaned
        .par_iter()
        .map(|batch| {
            let (kept, refused) = split(batch)?;
            let scored = kept.map(|rows| score_rows(model, rows)).transpose()?;
            Ok((scored, refused))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut scored = Vec::new();
    let mut refused = Vec::new();
    for (kept, refusals) in parts {
        scored.extend(kept);
        refused.extend(refusals);
    }
    Ok((scored, refused))
}

/// [`score`] with online topics: the kept rows of the whole micro-batch, in
/// message order, update the topics at once ([`OnlineTopics::update`]);
/// `seed` gives a k-means seed's first assignment. The assignment carries
/// the labels and topic events.
pub fn score_online(
    topics: &mut OnlineTopics,
    seed: &Model,
    cleaned: &[RecordBatch],
    now_micros: i64,
) -> anyhow::Result<(Vec<Scored>, Vec<Refused>, Assignment)> {
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for batch in cleaned {
        let (rows, refusals) = split(batch)?;
        kept.extend(rows);
        refused.extend(refusals);
    }
    let mut docs = Vec::new();
    let mut initial = topics.wants_initial().then(Vec::new);
    for rows in &kept {
        let text = TextColumns::new(rows)?;
        for i in 0..rows.num_rows() {
            let campaign = text.row(i);
            if let Some(initial) = initial.as_mut() {
                initial.push(seed.score_text(&campaign).0);
            }
            docs.push(topics.doc(&campaign));
        }
    }
    let assignment = topics.update(&docs, initial.as_deref(), now_micros);
    let mut scored = Vec::with_capacity(kept.len());
    let mut at = 0;
    for rows in kept {
        let range = at..at + rows.num_rows();
        at = range.end;
        scored.push(Scored::new(
            rows,
            assignment.topic[range.clone()].to_vec(),
            assignment.distance[range.clone()].to_vec(),
            assignment.outlier[range].to_vec(),
        )?);
    }
    Ok((scored, refused, assignment))
}

/// The rows of one cleaned batch that passed every rule, and the refused.
fn split(batch: &RecordBatch) -> anyhow::Result<(Option<RecordBatch>, Vec<Refused>)> {
    let mut refused = Vec::new();
    let reasons = arrow::compute::cast(
        column(batch, "reject_reason")?,
        &arrow::datatypes::DataType::Utf8,
    )?;
    let reasons = reasons.as_string::<i32>();
    let lines = column(batch, "source_line")?.as_primitive::<Int64Type>();
    for i in 0..batch.num_rows() {
        if reasons.is_valid(i) {
            refused.push(Refused {
                index: lines.value(i) as usize,
                // The SQL names only reasons of the vocabulary (a unit
                // test checks); anything else would be a rule failing.
                reason: RejectReason::parse(reasons.value(i)).unwrap_or(RejectReason::RuleFailed),
                detail: "refused by sql/preprocess.sql".into(),
            });
        }
    }
    let kept = filter_record_batch(batch, &is_null(reasons)?)?;
    Ok(((kept.num_rows() > 0).then_some(kept), refused))
}

fn score_rows(model: &Model, rows: RecordBatch) -> anyhow::Result<Scored> {
    let n = rows.num_rows();
    let text = TextColumns::new(&rows)?;
    let (mut cluster, mut distance, mut outlier) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for i in 0..n {
        let (c, d) = model.score_text(&text.row(i));
        let radius = model.meta.clusters[c as usize].radius;
        cluster.push(c);
        distance.push(d);
        outlier.push(radius > 0.0 && d > radius);
    }
    Scored::new(rows, cluster, distance, outlier)
}

impl Scored {
    /// Kept rows with their clusters, distances and outlier flags.
    fn new(
        rows: RecordBatch,
        cluster: Vec<u32>,
        distance: Vec<f32>,
        outlier: Vec<bool>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            index: column(&rows, "source_line")?
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .map(|i| *i as usize)
                .collect(),
            campaign_id: column(&rows, "campaign_id")?
                .as_primitive::<Int64Type>()
                .values()
                .to_vec(),
            created_at: column(&rows, "created_at")?
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec(),
            cluster,
            distance,
            outlier,
            rows,
        })
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> anyhow::Result<&'a Arc<dyn Array>> {
    batch
        .column_by_name(name)
        .ok_or_else(|| anyhow::anyhow!("cleaned batch has no column `{name}`"))
}

/// The result produced for each scored record, keyed by campaign id.
#[derive(Debug, Serialize)]
pub struct ResultRecord<'a> {
    pub campaign_id: i64,
    pub created_at: String,
    pub cluster: u32,
    pub cluster_label: &'a str,
    pub distance: f32,
    pub outlier: bool,
    pub domain: Option<&'a str>,
    pub model_version: &'a str,
    pub processed_at: &'a str,
}

/// What goes to the dead-letter topic: why, where from, and the payload as sent.
#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    pub reason: RejectReason,
    pub detail: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The original payload (lossy UTF-8: invalid bytes become U+FFFD), cut
    /// to `--dead-letter-payload-bytes`.
    pub payload: &'a str,
    /// True when `payload` was cut.
    pub payload_truncated: bool,
    /// Size of the original payload in bytes.
    pub payload_bytes: usize,
    pub processed_at: &'a str,
}

/// Each cluster's label for results: its top terms, comma-separated.
pub fn cluster_labels(model: &Model) -> HashMap<u32, String> {
    model
        .meta
        .clusters
        .iter()
        .map(|c| {
            let label = c
                .top_terms
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            (c.cluster, label)
        })
        .collect()
}

/// `2023-05-17T10:00:00` (fractional seconds only when present).
pub fn format_micros(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        // chrono's Debug form is ISO 8601 with the fraction in 0, 3, 6 or 9
        // digits: `format("%Y-%m-%dT%H:%M:%S%.f")` without parsing the
        // pattern for every record (that parse showed in the stream's
        // profile). A unit test pins the two as equal.
        .map(|t| format!("{:?}", t.naive_utc()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::format_micros;

    #[test]
    fn micros_format_as_the_strftime_pattern_would() {
        for micros in [
            0,
            1_684_317_600_000_000,
            1_684_317_600_120_000,
            1_684_317_600_123_456,
            -86_400_000_001,
        ] {
            let t = chrono::DateTime::from_timestamp_micros(micros).unwrap();
            let expected = t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string();
            assert_eq!(format_micros(micros), expected);
        }
        assert_eq!(format_micros(1_684_317_600_000_000), "2023-05-17T10:00:00");
    }
}
