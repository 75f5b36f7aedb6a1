//! The model artifact: `models/<version>/` with `model.json` (parameters,
//! training inputs, cluster labels), `centroids.parquet` (`cluster INT`,
//! `centroid FIXED_SIZE_LIST<FLOAT>`) and `features.parquet` (`bucket INT`,
//! `idf FLOAT`, `term VARCHAR`); `models/LATEST` names the version in use.
//! Everything is plain Parquet and JSON so Python reads it without adlens.
//! [`Model::score`] is the one scoring function batch and stream share.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, FixedSizeListArray, Float32Array, Int32Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Float32Type, Int32Type, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::features::{FeatureParams, SparseVec, Vectorizer};
use crate::kmeans::Centroids;
use crate::manifest::Manifest;

/// Layout version of the model directory.
pub const FORMAT_VERSION: u32 = 1;
/// The pointer file naming the model in use.
pub const LATEST: &str = "LATEST";

/// What a model is, how it was trained and what its clusters mean.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelMeta {
    pub format_version: u32,
    pub version: String,
    pub adlens_version: String,
    pub created_at: String,
    pub k: usize,
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
    /// 95th percentile of training distances: farther records are outliers.
    pub radius: f32,
}

/// A loaded model, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    pub meta: ModelMeta,
    pub vectorizer: Vectorizer,
    pub centroids: Centroids,
}

impl Model {
    pub fn new(meta: ModelMeta, vectorizer: Vectorizer, centroids: Vec<Vec<f32>>) -> Self {
        Self {
            meta,
            vectorizer,
            centroids: Centroids::new(centroids),
        }
    }

    /// The nearest centroid of a vector and the Euclidean distance to it,
    /// from `|x|² + |c|² - 2 x·c` so sparse vectors cost O(nnz · k).
    pub fn score(&self, v: &SparseVec) -> (u32, f32) {
        let (cluster, d2) = self.centroids.nearest(v);
        (cluster as u32, d2.sqrt())
    }

    /// Writes the model into `dir` (which must not exist yet).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir)?;
        fs::write(
            dir.join("model.json"),
            serde_json::to_string_pretty(&self.meta)? + "\n",
        )?;
        let dim = self.vectorizer.params.dim as i32;
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let values =
            Float32Array::from_iter_values(self.centroids.rows().iter().flatten().copied());
        let centroids =
            FixedSizeListArray::try_new(Arc::clone(&item), dim, Arc::new(values), None)?;
        let batch = RecordBatch::try_from_iter(vec![
            (
                "cluster",
                Arc::new(Int32Array::from_iter_values(0..self.centroids.len() as i32)) as _,
            ),
            ("centroid", Arc::new(centroids) as _),
        ])?;
        write_parquet(&dir.join("centroids.parquet"), &batch)?;
        let features = RecordBatch::try_from_iter(vec![
            (
                "bucket",
                Arc::new(Int32Array::from_iter_values(0..dim)) as _,
            ),
            (
                "idf",
                Arc::new(Float32Array::from(self.vectorizer.idf.clone())) as _,
            ),
            (
                "term",
                Arc::new(StringArray::from_iter_values(&self.vectorizer.terms)) as _,
            ),
        ])?;
        write_parquet(&dir.join("features.parquet"), &features)?;
        Ok(())
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
        if centroids.len() != meta.k
            || meta.clusters.len() != meta.k
            || idf.len() != dim
            || ids != dim
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
        Ok(Self::new(meta, vectorizer, centroids))
    }

    /// Loads the model `models/LATEST` names.
    pub fn load_latest(models: &Path) -> Result<Self, Error> {
        let version = latest_version(models)?.ok_or_else(|| {
            Error::input(
                models.display().to_string(),
                None,
                "no model yet; run `adlens batch` first",
            )
        })?;
        Self::load(&models.join(version))
    }
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
    let tmp = models.join(format!(".{LATEST}.tmp-{}", std::process::id()));
    fs::write(&tmp, format!("{version}\n"))?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(tmp, models.join(LATEST))
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
mod tests {
    use super::*;

    fn tiny_model() -> Model {
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
            k: 2,
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
        assert_eq!(model.score(&vec![(0, 1.0)]), (0, 0.0));
        let (cluster, distance) = model.score(&vec![(1, 0.6), (2, 0.8)]);
        assert_eq!(cluster, 1);
        assert!(distance < 1e-3);
        let (cluster, distance) = model.score(&vec![(0, 0.2), (2, 0.98)]);
        assert_eq!(cluster, 1);
        let expected = (0.2f32 * 0.2 + 0.6 * 0.6 + 0.18 * 0.18).sqrt();
        assert!(
            (distance - expected).abs() < 1e-4,
            "{distance} vs {expected}"
        );
    }

    #[test]
    fn saves_and_loads_the_same_model() {
        let tmp = tempfile::tempdir().unwrap();
        let model = tiny_model();
        model.save(&tmp.path().join("v")).unwrap();
        let loaded = Model::load(&tmp.path().join("v")).unwrap();
        assert_eq!(loaded.centroids.rows(), model.centroids.rows());
        assert_eq!(loaded.vectorizer, model.vectorizer);
        assert_eq!(loaded.meta, model.meta);
        set_latest(tmp.path(), "v").unwrap();
        assert_eq!(latest_version(tmp.path()).unwrap().as_deref(), Some("v"));
    }
}
