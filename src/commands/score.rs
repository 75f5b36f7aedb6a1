//! `adlens score`: assigns every cleaned campaign to its nearest cluster of an
//! existing model, writing `DIR/assignments/` and `DIR/clusters/`. `batch`
//! runs the same pass right after training.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::cli::ScoreArgs;
use crate::cluster;
use crate::model::Model;

pub async fn run(args: &ScoreArgs, progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let model = match &args.model {
        Some(dir) => Model::load(dir)?,
        None => Model::load_latest(&args.models)?,
    };
    crate::manifest::Manifest::read(&args.data)?;
    let (assigned, staged) = cluster::score_into(&args.data, Arc::new(model.clone())).await?;
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
