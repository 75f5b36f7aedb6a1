//! The model artifact: `models/<version>/` with `model.json` (algorithm,
//! parameters, training inputs, cluster labels) and the algorithm's tables;
//! `models/LATEST` names the version in use.
//!
//! - k-means: `centroids.parquet` (`cluster INT`, `centroid
//!   FIXED_SIZE_LIST<FLOAT>`) and `features.parquet` (`bucket INT`, `idf
//!   FLOAT`, `term VARCHAR`).
//! - dmm: `vocabulary.parquet` (`word INT`, `term VARCHAR`),
//!   `cluster_words.parquet` (`cluster INT`, `word INT`, `count INT`: the
//!   sparse cluster-word counts) and `cluster_sizes.parquet` (`cluster INT`,
//!   `docs BIGINT`, `tokens BIGINT`); `alpha` and `beta` are in `model.json`.
//!
//! Everything is plain Parquet and JSON so Python reads it without adlens.
//! [`Model::score_text`] is the one scoring function batch and stream share.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, FixedSizeListArray, Float32Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Int64Type, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use super::dmm::{Counts, DmmParams, Vocabulary, readable};
use super::features::{CampaignText, FeatureParams, SparseVec, Vectorizer};
use super::kmeans::Centroids;
use crate::error::Error;
use crate::manifest::Manifest;

/// Layout version of the model directory.
pub const FORMAT_VERSION: u32 = 1;
/// The pointer file naming the model in use.
pub const LATEST: &str = "LATEST";

/// The clustering algorithm of a model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// Sparse spherical k-means over TF-IDF vectors ([`super::kmeans`]).
    #[default]
    Kmeans,
    /// The Dirichlet multinomial mixture over token bags ([`super::dmm`]).
    Dmm,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Self::Kmeans => "kmeans",
            Self::Dmm => "dmm",
        }
    }
}

/// What a model is, how it was trained and what its clusters mean.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    pub format_version: u32,
    pub version: String,
    pub adlens_version: String,
    pub created_at: String,
    /// Models written before dmm existed are k-means.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// The number of clusters (for dmm, the number found).
    pub k: usize,
    /// dmm's hyperparameters (`k_max` is the upper bound it was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmm: Option<DmmParams>,
    pub seed: u64,
    pub features: FeatureParams,
    pub training: TrainingInfo,
    /// Mean squared distance of the training rows to their centroid.
    pub inertia: f64,
    pub clusters: Vec<ClusterLabel>,
    /// Milliseconds per phase: `sample_and_features`, `train`, `score`.
    #[serde(default)]
    pub timings_ms: std::collections::BTreeMap<String, u64>,
    /// `(k, simplified silhouette)` when k was chosen automatically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub k_curve: Vec<(usize, f64)>,
    /// `(β, clusters found)` of each `β` dmm trained when it chose `β` (the
    /// last is the model's; see [`super::dmm::BetaRule`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub beta_curve: Vec<(f64, usize)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingInfo {
    pub data_dir: String,
    /// SHA-256 of the preprocess manifest read; `--if-changed` compares it.
    pub manifest_sha256: String,
    pub manifest: Manifest,
    pub rows: u64,
    pub sampled_rows: u64,
    pub init: String,
    pub n_runs: usize,
    pub batch_rows: usize,
    pub steps: u64,
    pub tolerance: f64,
}

/// A cluster in words.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterLabel {
    pub cluster: u32,
    pub size: u64,
    pub top_terms: Vec<String>,
    pub top_domains: Vec<String>,
    pub examples: Vec<String>,
    /// Farther records are outliers. k-means: the 95th percentile of the
    /// scored campaigns' distances to the centroid. dmm: the distance is
    /// minus the record's mean log-probability per token under the cluster,
    /// and this is its 95th percentile over the cluster's training records
    /// (their likelihood's 5th percentile).
    pub radius: f32,
}

/// A loaded model, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    pub meta: ModelMeta,
    pub clusters: Clusters,
}

/// What a model's clusters are made of.
#[derive(Debug, Clone, PartialEq)]
pub enum Clusters {
    Centroids {
        vectorizer: Vectorizer,
        centroids: Centroids,
    },
    Mixture {
        vocabulary: Vocabulary,
        counts: Counts,
        /// Each cluster's outlier distance (see [`ClusterLabel::radius`]).
        radius: Vec<f32>,
    },
}

impl Clusters {
    /// The number of clusters.
    pub fn len(&self) -> usize {
        match self {
            Self::Centroids { centroids, .. } => centroids.len(),
            Self::Mixture { counts, .. } => counts.clusters(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Model {
    /// A k-means model.
    pub fn new(meta: ModelMeta, vectorizer: Vectorizer, centroids: Vec<Vec<f32>>) -> Self {
        let centroids = Centroids::new(centroids);
        Self {
            meta,
            clusters: Clusters::Centroids {
                vectorizer,
                centroids,
            },
        }
    }

    /// The number of clusters.
    pub fn len(&self) -> usize {
        self.clusters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The nearest centroid of a vector and the Euclidean distance to it,
    /// from `|x|² + |c|² - 2 x·c` so sparse vectors cost O(nnz · k).
    fn nearest(centroids: &Centroids, v: &SparseVec) -> (u32, f32) {
        let (cluster, d2) = centroids.nearest(v);
        (cluster as u32, d2.sqrt())
    }

    /// The cluster of one campaign and its distance from it (see
    /// [`ClusterLabel::radius`] for what the distance is per algorithm).
    pub fn score_text(&self, text: &CampaignText<'_>) -> (u32, f32) {
        match &self.clusters {
            Clusters::Centroids {
                vectorizer,
                centroids,
            } => Self::nearest(centroids, &vectorizer.vector(text)),
            Clusters::Mixture {
                vocabulary, counts, ..
            } => {
                let (doc, unknown) = vocabulary
                    .doc_of(|add| text.for_each_token(&self.meta.features, |t, _| add(t)));
                let z = counts.most_probable(&doc, &mut Vec::new());
                let likelihood = counts.per_token_log_likelihood(&doc, unknown, z);
                (z as u32, -likelihood as f32)
            }
        }
    }

    /// The outlier distance of `cluster` known before scoring (dmm's, from
    /// training); k-means's comes from the scored campaigns.
    pub fn training_radius(&self, cluster: usize) -> Option<f32> {
        match &self.clusters {
            Clusters::Centroids { .. } => None,
            Clusters::Mixture { radius, .. } => radius.get(cluster).copied(),
        }
    }

    /// Words that say what `cluster` is about (URL tokens left out). k-means:
    /// the heaviest centroid terms. dmm: the most probable words, then the
    /// most distinctive (most over-represented against all clusters).
    pub fn top_terms(&self, cluster: usize, n: usize) -> Vec<String> {
        match &self.clusters {
            Clusters::Centroids {
                vectorizer,
                centroids,
            } => {
                let centroid = &centroids.rows()[cluster];
                let mut buckets: Vec<usize> = (0..centroid.len()).collect();
                buckets.sort_by(|a, b| centroid[*b].total_cmp(&centroid[*a]));
                buckets
                    .into_iter()
                    .filter(|&b| centroid[b] > 0.0)
                    .map(|b| vectorizer.terms[b].clone())
                    .filter(|t| readable(t))
                    .take(n)
                    .collect()
            }
            Clusters::Mixture {
                vocabulary, counts, ..
            } => counts.top_terms(vocabulary, cluster, n),
        }
    }

    /// Writes the model into `dir` (which must not exist yet).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir)?;
        fs::write(
            dir.join("model.json"),
            serde_json::to_string_pretty(&self.meta)? + "\n",
        )?;
        match &self.clusters {
            Clusters::Centroids {
                vectorizer,
                centroids,
            } => save_centroids(dir, vectorizer, centroids),
            Clusters::Mixture {
                vocabulary, counts, ..
            } => save_mixture(dir, vocabulary, counts),
        }
    }

    /// Loads and validates a model directory.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let fail = |m: String| Error::input(dir.display().to_string(), None, m);
        let text = fs::read_to_string(dir.join("model.json"))
            .map_err(|e| fail(format!("model.json: {}", crate::ingest::io_message(&e))))?;
        let meta: ModelMeta =
            serde_json::from_str(&text).map_err(|e| fail(format!("model.json: {e}")))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(fail(format!(
                "model format {} is not supported (expected {FORMAT_VERSION})",
                meta.format_version
            )));
        }
        match meta.algorithm {
            Algorithm::Kmeans => load_centroids(dir, meta),
            Algorithm::Dmm => load_mixture(dir, meta),
        }
    }

    /// Loads the model `models/LATEST` names.
    pub fn load_latest(models: &Path) -> Result<Self, Error> {
        Self::load(&latest_dir(models)?)
    }
}

/// The directory of the version `models/LATEST` names.
pub fn latest_dir(models: &Path) -> Result<PathBuf, Error> {
    let version = latest_version(models)?.ok_or_else(|| {
        Error::input(
            models.display().to_string(),
            None,
            "no model yet; run `adlens batch` first",
        )
    })?;
    Ok(models.join(version))
}

/// The version `models/LATEST` names, if any.
pub fn latest_version(models: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(models.join(LATEST)) {
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::input(
            models.join(LATEST).display().to_string(),
            None,
            crate::ingest::io_message(&e),
        )),
    }
}

/// Points `models/LATEST` at `version`, atomically (write then rename).
pub fn set_latest(models: &Path, version: &str) -> std::io::Result<()> {
    crate::layout::write_atomic(&models.join(LATEST), format!("{version}\n").as_bytes())
}

/// Model versions in `models`, oldest first (versions sort by time).
pub fn versions(models: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(models)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.join("model.json").exists()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn save_centroids(
    dir: &Path,
    vectorizer: &Vectorizer,
    centroids: &Centroids,
) -> anyhow::Result<()> {
    let dim = vectorizer.params.dim as i32;
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let values = Float32Array::from_iter_values(centroids.rows().iter().flatten().copied());
    let list = FixedSizeListArray::try_new(Arc::clone(&item), dim, Arc::new(values), None)?;
    let batch = RecordBatch::try_from_iter(vec![
        (
            "cluster",
            Arc::new(Int32Array::from_iter_values(0..centroids.len() as i32)) as _,
        ),
        ("centroid", Arc::new(list) as _),
    ])?;
    write_parquet(&dir.join("centroids.parquet"), &batch)?;
    let features = RecordBatch::try_from_iter(vec![
        (
            "bucket",
            Arc::new(Int32Array::from_iter_values(0..dim)) as _,
        ),
        (
            "idf",
            Arc::new(Float32Array::from(vectorizer.idf.clone())) as _,
        ),
        (
            "term",
            Arc::new(StringArray::from_iter_values(&vectorizer.terms)) as _,
        ),
    ])?;
    write_parquet(&dir.join("features.parquet"), &features)?;
    Ok(())
}

fn load_centroids(dir: &Path, meta: ModelMeta) -> Result<Model, Error> {
    let fail = |m: String| Error::input(dir.display().to_string(), None, m);
    let dim = meta.features.dim;
    let centroids_batch = read_parquet(&dir.join("centroids.parquet"))
        .map_err(|e| fail(format!("centroids.parquet: {e}")))?;
    let list = centroids_batch
        .column_by_name("centroid")
        .and_then(|c| c.as_fixed_size_list_opt())
        .ok_or_else(|| fail("centroids.parquet has no `centroid` list".into()))?;
    if list.value_length() as usize != dim {
        return Err(fail(format!(
            "centroids have {} values, model.json says dim {dim}",
            list.value_length()
        )));
    }
    let values = list.values().as_primitive::<Float32Type>();
    let centroids: Vec<Vec<f32>> = (0..list.len())
        .map(|i| values.values()[i * dim..(i + 1) * dim].to_vec())
        .collect();
    let features = read_parquet(&dir.join("features.parquet"))
        .map_err(|e| fail(format!("features.parquet: {e}")))?;
    let idf = features
        .column_by_name("idf")
        .map(|c| c.as_primitive::<Float32Type>().values().to_vec())
        .unwrap_or_default();
    let terms = features
        .column_by_name("term")
        .map(|c| {
            c.as_string::<i32>()
                .iter()
                .map(|t| t.unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let ids = features
        .column_by_name("bucket")
        .map(|c| c.as_primitive::<Int32Type>().len())
        .unwrap_or(0);
    if centroids.len() != meta.k || meta.clusters.len() != meta.k || idf.len() != dim || ids != dim
    {
        return Err(fail(format!(
            "inconsistent model: k={} dim={dim}, {} centroids, {} idf values",
            meta.k,
            centroids.len(),
            idf.len()
        )));
    }
    let vectorizer = Vectorizer {
        params: meta.features.clone(),
        idf,
        terms,
    };
    Ok(Model::new(meta, vectorizer, centroids))
}

fn save_mixture(dir: &Path, vocabulary: &Vocabulary, counts: &Counts) -> anyhow::Result<()> {
    let vocabulary = RecordBatch::try_from_iter(vec![
        (
            "word",
            Arc::new(Int32Array::from_iter_values(0..vocabulary.len() as i32)) as _,
        ),
        (
            "term",
            Arc::new(StringArray::from_iter_values(vocabulary.terms())) as _,
        ),
    ])?;
    write_parquet(&dir.join("vocabulary.parquet"), &vocabulary)?;
    let (mut clusters, mut words, mut uses) = (Vec::new(), Vec::new(), Vec::new());
    for (word, users) in counts.words.iter().enumerate() {
        for (cluster, n) in users {
            clusters.push(*cluster as i32);
            words.push(word as i32);
            uses.push(*n as i32);
        }
    }
    let cluster_words = RecordBatch::try_from_iter(vec![
        ("cluster", Arc::new(Int32Array::from(clusters)) as _),
        ("word", Arc::new(Int32Array::from(words)) as _),
        ("count", Arc::new(Int32Array::from(uses)) as _),
    ])?;
    write_parquet(&dir.join("cluster_words.parquet"), &cluster_words)?;
    let sizes = RecordBatch::try_from_iter(vec![
        (
            "cluster",
            Arc::new(Int32Array::from_iter_values(0..counts.clusters() as i32)) as _,
        ),
        (
            "docs",
            Arc::new(Int64Array::from_iter_values(
                counts.docs.iter().map(|n| *n as i64),
            )) as _,
        ),
        (
            "tokens",
            Arc::new(Int64Array::from_iter_values(
                counts.tokens.iter().map(|n| *n as i64),
            )) as _,
        ),
    ])?;
    write_parquet(&dir.join("cluster_sizes.parquet"), &sizes)?;
    Ok(())
}

/// The integer column `name` of a model table as `i64`s.
fn int_column(batch: &RecordBatch, name: &str) -> Option<Vec<i64>> {
    let column = arrow::compute::cast(batch.column_by_name(name)?, &DataType::Int64).ok()?;
    Some(column.as_primitive::<Int64Type>().values().to_vec())
}

fn load_mixture(dir: &Path, meta: ModelMeta) -> Result<Model, Error> {
    let fail = |m: String| Error::input(dir.display().to_string(), None, m);
    let table =
        |file: &str| read_parquet(&dir.join(file)).map_err(|e| fail(format!("{file}: {e}")));
    let params = meta
        .dmm
        .ok_or_else(|| fail("model.json: a dmm model without `dmm` parameters".into()))?;
    let vocabulary = table("vocabulary.parquet")?;
    let terms: Vec<String> = vocabulary
        .column_by_name("term")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| fail("vocabulary.parquet has no `term` column".into()))?
        .iter()
        .map(|t| t.unwrap_or_default().to_string())
        .collect();
    let sizes = table("cluster_sizes.parquet")?;
    let (Some(docs), Some(tokens)) = (int_column(&sizes, "docs"), int_column(&sizes, "tokens"))
    else {
        return Err(fail(
            "cluster_sizes.parquet needs `docs` and `tokens`".into(),
        ));
    };
    let mut counts = Counts::new(docs.len(), terms.len(), params.alpha, params.beta);
    counts.docs = docs.iter().map(|n| *n as u64).collect();
    counts.tokens = tokens.iter().map(|n| *n as u64).collect();
    let cluster_words = table("cluster_words.parquet")?;
    let columns = ["cluster", "word", "count"].map(|c| int_column(&cluster_words, c));
    let [Some(clusters), Some(words), Some(uses)] = columns else {
        return Err(fail(
            "cluster_words.parquet needs `cluster`, `word` and `count`".into(),
        ));
    };
    for ((z, w), n) in clusters.iter().zip(&words).zip(&uses) {
        let (z, w) = (*z as usize, *w as usize);
        if z >= counts.clusters() || w >= terms.len() || *n <= 0 {
            return Err(fail(format!(
                "cluster_words.parquet: cluster {z}, word {w}, count {n} is out of range"
            )));
        }
        counts.words[w].push((z as u32, *n as u32));
    }
    if counts.clusters() != meta.k || meta.clusters.len() != meta.k {
        return Err(fail(format!(
            "inconsistent model: k={}, {} cluster sizes, {} labels",
            meta.k,
            counts.clusters(),
            meta.clusters.len()
        )));
    }
    let radius = meta.clusters.iter().map(|c| c.radius).collect();
    Ok(Model {
        meta,
        clusters: Clusters::Mixture {
            vocabulary: Vocabulary::from_terms(terms),
            counts,
            radius,
        },
    })
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> anyhow::Result<()> {
    let mut writer = ArrowWriter::try_new(fs::File::create(path)?, batch.schema(), None)?;
    writer.write(batch)?;
    writer.close()?;
    Ok(())
}

fn read_parquet(path: &Path) -> anyhow::Result<RecordBatch> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path)?)?
        .with_batch_size(1 << 20)
        .build()?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::new(Schema::empty()));
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A two-cluster k-means model over four buckets.
    pub(crate) fn tiny_model() -> Model {
        let params = FeatureParams {
            dim: 4,
            ..FeatureParams::default()
        };
        let vectorizer = Vectorizer {
            params: params.clone(),
            idf: vec![1.0; 4],
            terms: vec!["a".into(), "b".into(), "".into(), "".into()],
        };
        let meta = ModelMeta {
            format_version: FORMAT_VERSION,
            version: "v".into(),
            adlens_version: "0".into(),
            created_at: "now".into(),
            algorithm: Algorithm::Kmeans,
            k: 2,
            dmm: None,
            seed: 1,
            features: params,
            training: TrainingInfo {
                data_dir: "d".into(),
                manifest_sha256: "h".into(),
                manifest: serde_json::from_str(r#"{"format_version":1,"adlens_version":"0","created_at":"t","sql_sha256":"s","inputs":[],"counts":{"records_in":0,"rows_out":0,"rejected":0,"rejected_by_reason":{},"duplicates_dropped":0},"outputs":{},"timings_ms":{},"settings":{}}"#).unwrap(),
                rows: 0,
                sampled_rows: 0,
                init: "kmeans++".into(),
                n_runs: 1,
                batch_rows: 1,
                steps: 1,
                tolerance: 0.0,
            },
            inertia: 0.0,
            clusters: (0..2)
                .map(|cluster| ClusterLabel {
                    cluster,
                    size: 1,
                    top_terms: vec!["a".into()],
                    top_domains: Vec::new(),
                    examples: Vec::new(),
                    radius: 1.0,
                })
                .collect(),
            timings_ms: Default::default(),
            k_curve: Vec::new(),
            beta_curve: Vec::new(),
        };
        Model::new(
            meta,
            vectorizer,
            vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.6, 0.8, 0.0]],
        )
    }

    #[test]
    fn scoring_picks_the_nearest_centroid() {
        let model = tiny_model();
        let Clusters::Centroids { centroids, .. } = &model.clusters else {
            unreachable!()
        };
        let score = |v: SparseVec| Model::nearest(centroids, &v);
        assert_eq!(score(vec![(0, 1.0)]), (0, 0.0));
        let (cluster, distance) = score(vec![(1, 0.6), (2, 0.8)]);
        assert_eq!(cluster, 1);
        assert!(distance < 1e-3);
        let (cluster, distance) = score(vec![(0, 0.2), (2, 0.98)]);
        assert_eq!(cluster, 1);
        let expected = (0.2f32 * 0.2 + 0.6 * 0.6 + 0.18 * 0.18).sqrt();
        assert!(
            (distance - expected).abs() < 1e-4,
            "{distance} vs {expected}"
        );
    }

    /// `model` saved into `dir/v` and loaded back, checked to be the same.
    fn round_trip(model: &Model, dir: &Path) -> Model {
        model.save(&dir.join("v")).unwrap();
        let loaded = Model::load(&dir.join("v")).unwrap();
        assert_eq!(loaded.clusters, model.clusters);
        assert_eq!(loaded.meta, model.meta);
        loaded
    }

    #[test]
    fn saves_and_loads_the_same_model() {
        let tmp = tempfile::tempdir().unwrap();
        round_trip(&tiny_model(), tmp.path());
        set_latest(tmp.path(), "v").unwrap();
        assert_eq!(latest_version(tmp.path()).unwrap().as_deref(), Some("v"));
    }

    /// A two-cluster mixture over the words `cheap`, `flights`, `shoes`.
    fn tiny_mixture() -> Model {
        use crate::model::dmm::Doc;
        let mut model = tiny_model();
        let vocabulary =
            Vocabulary::from_terms(vec!["cheap".into(), "flights".into(), "shoes".into()]);
        let mut counts = Counts::new(2, 3, 0.1, 0.1);
        for _ in 0..3 {
            counts.add(&Doc::from_ids(vec![0, 1]), 0);
            counts.add(&Doc::from_ids(vec![0, 2]), 1);
            counts.add(&Doc::from_ids(vec![2]), 1);
        }
        model.meta.algorithm = Algorithm::Dmm;
        model.meta.dmm = Some(DmmParams {
            k_max: 6,
            alpha: 0.1,
            beta: 0.1,
            iterations: 5,
            seed: 1,
            beta_rule: Default::default(),
        });
        model.clusters = Clusters::Mixture {
            vocabulary,
            counts,
            radius: vec![1.0, 1.0],
        };
        model
    }

    #[test]
    fn a_mixture_saves_loads_and_scores_by_its_words() {
        let tmp = tempfile::tempdir().unwrap();
        let loaded = round_trip(&tiny_mixture(), tmp.path());
        let text = |title| CampaignText {
            title: Some(title),
            ..CampaignText::default()
        };
        assert_eq!(loaded.score_text(&text("Cheap flights to Rome")).0, 0);
        assert_eq!(loaded.score_text(&text("Shoes")).0, 1);
        let (_, known) = loaded.score_text(&text("flights flights"));
        let (_, unknown) = loaded.score_text(&text("zebra"));
        assert!(unknown > known, "{unknown} vs {known}");
        assert_eq!(loaded.top_terms(0, 8), ["cheap", "flights"]);
        assert_eq!(loaded.top_terms(1, 8), ["shoes", "cheap"]);
    }
}
