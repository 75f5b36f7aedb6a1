//! `adlens batch`: trains a model (k-means centroids or a Dirichlet
//! multinomial mixture) on the cleaned campaigns and writes a new model
//! version, then scores every campaign with it. Safe from
//! cron: one run at a time (a lock in the models directory), `--if-changed`
//! to skip unchanged data, `LATEST` moved only after everything succeeded.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::cli::BatchArgs;
use crate::cluster;
use crate::engine::{self, EngineConfig};
use crate::error::Error;
use crate::layout::StagedDir;
use crate::manifest::Manifest;
use crate::model::artifact::{Algorithm, Clusters};
use crate::model::dmm::{BetaRule, DmmParams};
use crate::model::features::FeatureParams;
use crate::model::kmeans::{Centroids, TrainOptions};
use crate::model::{self, Model, ModelMeta, TrainingInfo};

pub async fn run(args: &BatchArgs, progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let manifest = Manifest::read(&args.data)?;
    let manifest_sha256 = manifest_digest(&args.data)?;
    fs::create_dir_all(&args.models)
        .map_err(|e| Error::output(&args.models, crate::ingest::io_message(&e)))?;
    let Some(_lock) = lock(&args.models)? else {
        eprintln!(
            "another `adlens batch` is running on `{}`; nothing to do",
            args.models.display()
        );
        return Ok(());
    };
    if args.if_changed && trained_on(&args.models, &manifest_sha256) {
        eprintln!(
            "`{}` has not changed since the LATEST model; nothing to do",
            args.data.display()
        );
        return Ok(());
    }
    let rows = manifest.counts.rows_out;
    if rows == 0 {
        let data = args.data.display().to_string();
        return Err(Error::input(data, None, "no campaigns to train on").into());
    }
    let ctx = engine::session(&EngineConfig::default())?;
    let rate = (args.sample_rows as f64 / rows as f64).min(1.0);
    let texts = cluster::sample_texts(&ctx, &args.data, rate, args.seed)
        .await
        .context("sampling campaigns")?;
    tracing::info!("sampled {} of {rows} campaigns", texts.len());
    let sampled = Instant::now();
    let fit = fit(args, &texts)?;
    let trained = Instant::now();
    let version = version_name(&manifest_sha256, args, fit.clusters.len());
    let training = TrainingInfo {
        data_dir: args.data.display().to_string(),
        manifest_sha256,
        manifest,
        rows,
        sampled_rows: texts.len() as u64,
        init: fit.init.into(),
        n_runs: args.n_runs,
        batch_rows: args.batch_rows,
        steps: fit.steps,
        tolerance: args.tolerance,
    };
    let mut model = fit.into_model(args, version, training);
    let (scored, staged) = score(args, &mut model).await?;
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    model.meta.timings_ms = [
        ("sample_and_features".to_string(), ms(sampled - started)),
        ("train".to_string(), ms(trained - sampled)),
        ("score".to_string(), ms(trained.elapsed())),
    ]
    .into();
    publish(args, &model, staged)?;
    print!("{}", cluster_table(&model)?);
    if progress {
        eprintln!(
            "model {}: k={}, {} sampled rows, {} steps, trained in {:.1}s, {scored} campaigns scored, total {:.1}s",
            model.meta.version,
            model.meta.k,
            model.meta.training.sampled_rows,
            model.meta.training.steps,
            (trained - started).as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The SHA-256 of the data's manifest: what a model says it was trained
/// on, and what `--if-changed` compares.
fn manifest_digest(data: &Path) -> anyhow::Result<String> {
    let manifest = fs::read(data.join(crate::layout::MANIFEST))?;
    Ok(format!("{:x}", Sha256::digest(manifest)))
}

/// Scores every campaign with `model` into staged assignments and clusters
/// tables, and records the clusters' sizes and labels in the model; returns
/// the campaigns scored and the staged tables.
async fn score(args: &BatchArgs, model: &mut Model) -> anyhow::Result<(u64, Vec<StagedDir>)> {
    let ctx = engine::session(&EngineConfig::default())?;
    let (assigned, staged) =
        cluster::score_into(&ctx, &args.data, Arc::new(model.clone()), None).await?;
    model.meta.inertia = assigned.inertia;
    model.meta.clusters = assigned.labels;
    Ok((assigned.rows, staged))
}

/// What training made of the sample, before the model is named and scored.
struct Fit {
    clusters: Clusters,
    features: FeatureParams,
    dmm: Option<DmmParams>,
    /// The silhouette of each k tried (k-means with `--k-range`).
    k_curve: Vec<(usize, f64)>,
    /// The clusters found at each `β` tried (dmm without `--beta`).
    beta_curve: Vec<(f64, usize)>,
    steps: u64,
    init: &'static str,
}

/// Trains dmm on the sampled texts; the model keeps the `β` trained last.
fn fit_mixture(
    args: &BatchArgs,
    texts: &[cluster::SampledText],
    features: FeatureParams,
    k_given: Option<usize>,
) -> anyhow::Result<Fit> {
    let params = dmm_params(args, k_given);
    let mixture = cluster::train_mixture(texts, &features, &params);
    anyhow::ensure!(
        mixture.docs > 0,
        "no sampled campaign has a word shared with another: nothing to cluster"
    );
    if mixture.beta_trials.len() > 1 {
        eprintln!("chose beta={}", mixture.counts.beta);
    }
    let dmm = DmmParams {
        beta: mixture.counts.beta,
        ..params
    };
    Ok(Fit {
        clusters: Clusters::Mixture {
            vocabulary: mixture.vocabulary,
            counts: mixture.counts,
            radius: mixture.radius,
        },
        features,
        dmm: Some(dmm),
        k_curve: Vec::new(),
        beta_curve: mixture.beta_trials,
        steps: args.iterations as u64,
        init: mixture.init.name(),
    })
}

/// Trains `--algorithm` on the sampled texts.
fn fit(args: &BatchArgs, texts: &[cluster::SampledText]) -> anyhow::Result<Fit> {
    let features = FeatureParams {
        dim: args.dim.max(2),
        ..FeatureParams::default()
    };
    let dmm = Algorithm::from(args.algorithm) == Algorithm::Dmm;
    let k_given = match &args.k {
        Some(k) => parse_k(k)?,
        None if dmm => None,
        None => Some(KMEANS_DEFAULT_K),
    };
    if dmm {
        return fit_mixture(args, texts, features, k_given);
    }
    let options = TrainOptions {
        init: args.init,
        n_runs: args.n_runs,
        batch_rows: args.batch_rows,
        max_steps: args.max_iterations,
        tolerance: args.tolerance,
        seed: args.seed,
    };
    let sample = cluster::vectorize(texts, &features);
    let (k, k_curve) = choose_k(args, k_given, &sample.vectors, features.dim, &options)?;
    let (centroids, steps) = cluster::train(&sample.vectors, features.dim, k, &options)?;
    let clusters = Clusters::Centroids {
        vectorizer: sample.vectorizer,
        centroids: Centroids::new(centroids),
    };
    let init = args.init.name();
    Ok(Fit {
        clusters,
        features,
        dmm: None,
        k_curve,
        beta_curve: Vec::new(),
        steps,
        init,
    })
}

impl Fit {
    /// The model version `version` of this fit; its labels, inertia and
    /// timings are filled in once it has scored the campaigns.
    fn into_model(self, args: &BatchArgs, version: String, training: TrainingInfo) -> Model {
        let meta = ModelMeta {
            format_version: model::FORMAT_VERSION,
            version,
            adlens_version: env!("CARGO_PKG_VERSION").into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            algorithm: Algorithm::from(args.algorithm),
            k: self.clusters.len(),
            dmm: self.dmm,
            seed: args.seed,
            features: self.features,
            training,
            inertia: 0.0,
            clusters: Vec::new(),
            timings_ms: Default::default(),
            k_curve: self.k_curve,
            beta_curve: self.beta_curve,
        };
        Model {
            meta,
            clusters: self.clusters,
        }
    }
}

/// Saves the model under its version, moves the scored tables into place,
/// then points LATEST at it and prunes old versions (`--keep`).
fn publish(args: &BatchArgs, model: &Model, staged: Vec<StagedDir>) -> anyhow::Result<()> {
    let version = &model.meta.version;
    let tmp = args.models.join(format!(".{version}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    model
        .save(&tmp)
        .with_context(|| format!("writing model `{}`", tmp.display()))?;
    fs::rename(&tmp, args.models.join(version))?;
    // LATEST moves last: if publishing the outputs fails, LATEST still names
    // the model the outputs in place came from, and `--if-changed` retries.
    crate::layout::commit_all(staged).context("moving assignments and clusters into place")?;
    model::set_latest(&args.models, version)?;
    if let Some(keep) = args.keep {
        prune(&args.models, keep, version)?;
    }
    Ok(())
}

/// Holds `models/.lock` (an advisory `flock`, released when the process
/// ends, however it ends). `None` when another run holds it.
fn lock(models: &Path) -> anyhow::Result<Option<File>> {
    let path = models.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::output(&path, crate::ingest::io_message(&e)))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(anyhow::anyhow!("locking `{}`: {e}", path.display())),
    }
}

/// True when LATEST was trained on the manifest with this hash.
fn trained_on(models: &Path, manifest_sha256: &str) -> bool {
    model::latest_version(models)
        .ok()
        .flatten()
        .and_then(|v| Model::load(&models.join(v)).ok())
        .is_some_and(|m| m.meta.training.manifest_sha256 == manifest_sha256)
}

/// `--k`: a number of at least 2, or `None` for `auto`.
fn parse_k(k: &str) -> anyhow::Result<Option<usize>> {
    if k == "auto" {
        return Ok(None);
    }
    let k = k.parse::<usize>().ok().filter(|k| *k >= 2).ok_or_else(|| {
        Error::Usage(format!(
            "--k must be a number of at least 2 or `auto`, got `{k}`"
        ))
    })?;
    Ok(Some(k))
}

/// k-means's k when `--k` is not given.
const KMEANS_DEFAULT_K: usize = 16;

/// dmm's upper bound on clusters when `--k auto` (or not given).
const DMM_AUTO_K_MAX: usize = 100;

/// dmm's `β` when `--beta` is not given: where [`BetaRule::Doubling`]
/// starts (Yin & Wang's 0.1).
const DMM_BETA_START: f64 = 0.1;

fn dmm_params(args: &BatchArgs, k: Option<usize>) -> DmmParams {
    let (beta, beta_rule) = match args.beta {
        Some(beta) => (beta, BetaRule::Fixed),
        None => (DMM_BETA_START, BetaRule::Doubling),
    };
    DmmParams {
        k_max: k.unwrap_or(DMM_AUTO_K_MAX),
        alpha: args.alpha,
        beta,
        iterations: args.iterations,
        seed: args.seed,
        beta_rule,
    }
}

/// `--k N`, or the k of the best simplified silhouette over `--k-range`.
fn choose_k(
    args: &BatchArgs,
    k: Option<usize>,
    vectors: &[crate::model::features::SparseVec],
    dim: usize,
    options: &TrainOptions,
) -> anyhow::Result<(usize, Vec<(usize, f64)>)> {
    if let Some(k) = k {
        return Ok((k, Vec::new()));
    }
    let (from, to) = args
        .k_range
        .split_once("..=")
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .filter(|(a, b)| *a >= 2 && a <= b)
        .ok_or_else(|| {
            Error::Usage(format!(
                "--k-range must look like `8..=32`, got `{}`",
                args.k_range
            ))
        })?;
    let quick = TrainOptions {
        max_steps: options.max_steps.min(100),
        ..options.clone()
    };
    let probe = &vectors[..vectors.len().min(5000)];
    let mut curve = Vec::new();
    for k in (from..=to).step_by(4) {
        let (centroids, _) = cluster::train(vectors, dim, k, &quick)?;
        let score = cluster::simplified_silhouette(&Centroids::new(centroids), probe);
        eprintln!("k={k:>3}  simplified silhouette {score:.4}");
        curve.push((k, score));
    }
    let best = curve
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(from, |(k, _)| *k);
    eprintln!("chose k={best}");
    Ok((best, curve))
}

/// `20261122T040501Z-1a2b3c4d`: time first so versions sort by age.
fn version_name(manifest_sha256: &str, args: &BatchArgs, k: usize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "{manifest_sha256} {k} {} {} {} {} {:?} {} {:?} {}",
        args.seed,
        args.dim,
        args.sample_rows,
        args.init.name(),
        args.algorithm,
        args.alpha,
        args.beta,
        args.iterations
    ));
    let hash = format!("{:x}", hasher.finalize());
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ"),
        &hash[..8]
    )
}

/// Removes the oldest versions beyond `keep`, never `latest`.
fn prune(models: &Path, keep: usize, latest: &str) -> anyhow::Result<()> {
    let versions = model::versions(models)?;
    let excess = versions.len().saturating_sub(keep.max(1));
    for dir in versions.into_iter().take(excess) {
        if dir.file_name().is_some_and(|n| n != latest) {
            tracing::info!("pruning model `{}`", dir.display());
            fs::remove_dir_all(&dir)?;
        }
    }
    Ok(())
}

/// The cluster labels as a table for people.
fn cluster_table(model: &Model) -> anyhow::Result<String> {
    use arrow::array::{StringArray, UInt32Array, UInt64Array};
    let c = &model.meta.clusters;
    let short = |s: &str| crate::clean::text::truncate_at_char(s, 60).to_string();
    let batch = arrow::array::RecordBatch::try_from_iter(vec![
        (
            "cluster",
            Arc::new(UInt32Array::from_iter_values(c.iter().map(|l| l.cluster))) as _,
        ),
        (
            "size",
            Arc::new(UInt64Array::from_iter_values(c.iter().map(|l| l.size))) as _,
        ),
        (
            "top terms",
            Arc::new(StringArray::from_iter_values(c.iter().map(|l| {
                l.top_terms
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }))) as _,
        ),
        (
            "top domains",
            Arc::new(StringArray::from_iter_values(c.iter().map(|l| {
                l.top_domains
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }))) as _,
        ),
        (
            "example",
            Arc::new(StringArray::from_iter_values(
                c.iter()
                    .map(|l| short(l.examples.first().map_or("", String::as_str))),
            )) as _,
        ),
    ])?;
    Ok(format!(
        "{}\n",
        arrow::util::pretty::pretty_format_batches(&[batch])?
    ))
}
