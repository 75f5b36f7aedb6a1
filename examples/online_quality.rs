//! Feeds a preprocessed labelled set through the online topics of
//! `adlens stream --online` in topic-sorted micro-batches (each label's
//! records together, as MStream's "-T" sets) and writes each campaign's
//! topic, as it was when its micro-batch was processed, to a CSV that
//! `scripts/quality.sh` scores like a batch model's assignments.
//!
//! Why an example and not a subcommand: it evaluates the library against
//! labels no user has; `make quality` and `make bench` build and run it.
//!
//! Usage: online_quality CLEAN_DIR LABELS_CSV BATCH OUT_CSV

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use adlens::model::features::{FeatureParams, TextColumns};
use adlens::model::online::{self, OnlineTopics};
use anyhow::Context;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [clean, labels, batch, out] = args.as_slice() else {
        anyhow::bail!("usage: online_quality CLEAN_DIR LABELS_CSV BATCH OUT_CSV");
    };
    let batch: usize = batch.parse().context("BATCH")?;
    let labels = read_labels(Path::new(labels))?;
    let batches = read_campaigns(&Path::new(clean).join("campaigns"))?;
    // (label, campaign id, batch, row): sorted, each label's records together.
    let mut rows = Vec::new();
    for (b, rb) in batches.iter().enumerate() {
        let ids = rb
            .column_by_name("campaign_id")
            .context("no `campaign_id` column")?
            .as_primitive::<Int64Type>();
        for i in 0..rb.num_rows() {
            let id = ids.value(i);
            let label = labels
                .get(&id)
                .with_context(|| format!("no label for {id}"))?;
            rows.push((label.clone(), id, b, i));
        }
    }
    rows.sort();
    let columns = batches
        .iter()
        .map(TextColumns::new)
        .collect::<Result<Vec<_>, _>>()?;
    let mut topics = OnlineTopics::empty(online::DEFAULTS, FeatureParams::default());
    let mut writer = csv::Writer::from_path(out)?;
    writer.write_record(["campaign_id", "cluster_id"])?;
    for chunk in rows.chunks(batch.max(1)) {
        let docs: Vec<_> = chunk
            .iter()
            .map(|(_, _, b, i)| topics.doc(&columns[*b].row(*i)))
            .collect();
        let assigned = topics.update(&docs, None, 0);
        for ((_, id, ..), topic) in chunk.iter().zip(assigned.topic) {
            writer.write_record([id.to_string(), topic.to_string()])?;
        }
    }
    writer.flush()?;
    Ok(())
}

/// `id,topic` rows of a `*.labels.csv`.
fn read_labels(path: &Path) -> anyhow::Result<HashMap<i64, String>> {
    let mut labels = HashMap::new();
    for record in csv::Reader::from_path(path)?.records() {
        let record = record?;
        labels.insert(record[0].parse()?, record[1].to_string());
    }
    Ok(labels)
}

/// Every record batch of the Parquet files under `dir`, in path order.
fn read_campaigns(dir: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let mut files = Vec::new();
    parquet_files(dir, &mut files)?;
    files.sort();
    let mut batches = Vec::new();
    for file in files {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file)?)?.build()?;
        for batch in reader {
            batches.push(batch?);
        }
    }
    Ok(batches)
}

fn parquet_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading `{}`", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            parquet_files(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    Ok(())
}
