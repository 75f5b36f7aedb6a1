//! `adlens score`: assigns every cleaned campaign to its nearest cluster of an
//! existing model, writing `DIR/assignments/` and `DIR/clusters/`. `batch`
//! runs the same pass right after training. With `--cluster`, a Ballista
//! cluster's executors score (the model travels as its directory: see
//! [`crate::model::udf`]) and this process writes the tables.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::ScoreArgs;
use crate::cluster;
use crate::distributed;
use crate::engine::{self, EngineConfig};
use crate::model::udf::ModelSource;
use crate::model::{Model, latest_dir};

pub async fn run(args: &ScoreArgs, progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = match &args.model {
        Some(dir) => dir.clone(),
        None => latest_dir(&args.models)?,
    };
    let model = Model::load(&dir)?;
    crate::manifest::Manifest::read(&args.data)?;
    let config = EngineConfig::default();
    let ctx = match &args.cluster {
        Some(url) => distributed::client(url, &config).await?,
        None => engine::session(&config)?,
    };
    // Absolute, so every node of a cluster finds it whatever its directory.
    let source = ModelSource {
        dir: std::path::absolute(&dir)?,
        version: model.meta.version.clone(),
    };
    let (assigned, staged) =
        cluster::score_into(&ctx, &args.data, Arc::new(model.clone()), Some(source)).await?;
    crate::layout::commit_all(staged).context("moving the scores into place")?;
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
