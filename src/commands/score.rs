//! `adlens score`: assigns every cleaned campaign to its nearest cluster of an
//! existing model, writing `DIR/assignments/` and `DIR/clusters/`. `batch`
//! runs the same pass right after training.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::ScoreArgs;
use crate::cluster::{self, Assigned};
use crate::engine::{self, EngineConfig};
use crate::layout::StagedDir;
use crate::model::Model;
use crate::writer::{ParquetSink, SinkOptions};

/// Table of per-campaign cluster assignments.
pub const ASSIGNMENTS: &str = "assignments";
/// Table of cluster labels.
pub const CLUSTERS: &str = "clusters";

pub async fn run(args: &ScoreArgs, progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let model = match &args.model {
        Some(dir) => Model::load(dir)?,
        None => Model::load_latest(&args.models)?,
    };
    crate::manifest::Manifest::read(&args.data)?;
    let (assigned, staged) = score_into(&args.data, Arc::new(model.clone())).await?;
    for dir in staged {
        dir.commit().context("moving the scores into place")?;
    }
    if progress {
        eprintln!(
            "scored {} campaigns with model {} in {:.1}s",
            assigned.rows,
            model.meta.version,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Scores `data` with `model` into staged `assignments/` and `clusters/`
/// directories; the caller commits them once it is content.
pub async fn score_into(
    data: &Path,
    model: Arc<Model>,
) -> anyhow::Result<(Assigned, Vec<StagedDir>)> {
    let ctx = engine::session(&EngineConfig::default())?;
    let assignments = StagedDir::create(&data.join(ASSIGNMENTS))?;
    let sink = SinkOptions::default();
    let assigned =
        cluster::assign(&ctx, data, Arc::clone(&model), assignments.path(), &sink).await?;
    mark(assignments.path(), &model.meta.version, assigned.rows)?;

    let clusters = StagedDir::create(&data.join(CLUSTERS))?;
    let batch = cluster::clusters_batch(&assigned.labels, &model.meta.version)?;
    let mut writer = ParquetSink::new(clusters.path(), "part-00", batch.schema(), &[], sink)?;
    writer.write(&batch)?;
    writer.finish()?;
    mark(
        clusters.path(),
        &model.meta.version,
        assigned.labels.len() as u64,
    )?;
    Ok((assigned, vec![assignments, clusters]))
}

/// A small manifest saying which model made a scored table.
fn mark(dir: &Path, version: &str, rows: u64) -> std::io::Result<()> {
    let text = serde_json::json!({ "model_version": version, "rows": rows });
    std::fs::write(dir.join(crate::layout::MANIFEST), format!("{text:#}\n"))
}
