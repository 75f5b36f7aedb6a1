//! Training and scoring over the cleaned campaigns: a deterministic sample
//! trains the model (the IDF table and sparse k-means centroids,
//! [`kmeans`], or a Dirichlet multinomial mixture, [`dmm`]), so memory is
//! bounded by the sample, not the data set; one parallel pass then assigns
//! every campaign to its cluster and gathers what each cluster means
//! (sizes, top domains, central examples, radius).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Int64Array, ListBuilder, RecordBatch, StringArray,
    StringBuilder, UInt32Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;

use crate::layout::{self, StagedDir};
use crate::model::dmm::{self, DmmParams, Vocabulary};
use crate::model::features::{
    CampaignText, FEATURE_COLUMNS, FeatureParams, IdfFitter, SparseVec, TextColumns, Vectorizer,
    fnv1a64, string_column,
};
use crate::model::kmeans::{self, TrainOptions};
use crate::model::udf::{self, ModelSource, ScoreUdf};
use crate::model::{ClusterLabel, Model};
use crate::writer::{ParquetSink, SinkOptions};

/// Registers `data/campaigns` and returns its feature columns and ids, one stream per partition.
pub async fn campaign_streams(
    ctx: &SessionContext,
    data: &Path,
) -> anyhow::Result<Vec<SendableRecordBatchStream>> {
    register_campaigns(ctx, data).await?;
    let sql = format!(
        "SELECT campaign_id, {} FROM {}",
        FEATURE_COLUMNS.join(", "),
        layout::CAMPAIGNS
    );
    Ok(ctx.sql(&sql).await?.execute_stream_partitioned().await?)
}

/// Registers (again) the `campaigns` table of the preprocess output `data`.
async fn register_campaigns(ctx: &SessionContext, data: &Path) -> anyhow::Result<()> {
    let options = ParquetReadOptions::default()
        .table_partition_cols(vec![(layout::PARTITION_COLUMN.into(), DataType::Utf8)]);
    let dir = data.join(layout::CAMPAIGNS);
    if ctx.table_exist(layout::CAMPAIGNS)? {
        ctx.deregister_table(layout::CAMPAIGNS)?;
    }
    ctx.register_parquet(layout::CAMPAIGNS, dir.to_string_lossy().as_ref(), options)
        .await?;
    Ok(())
}

/// Every campaign's id, title and domain with its `scored` cluster and
/// distance, by `score_campaign` (see [`udf`]): on the session's own
/// threads, or on a cluster's executors when `ctx` is a cluster client.
async fn scored_streams(
    ctx: &SessionContext,
    data: &Path,
    model: Arc<Model>,
    source: Option<ModelSource>,
) -> anyhow::Result<Vec<SendableRecordBatchStream>> {
    register_campaigns(ctx, data).await?;
    ctx.register_udf(ScoreUdf::udf(model, source));
    let sql = format!(
        "SELECT campaign_id, title, domain, {}({}) AS scored FROM {}",
        udf::NAME,
        FEATURE_COLUMNS.join(", "),
        layout::CAMPAIGNS
    );
    Ok(ctx.sql(&sql).await?.execute_stream_partitioned().await?)
}

/// Whether a campaign is in the training sample: a hash of its id and the
/// seed, so the sample is the same whatever order the rows come in.
pub fn in_sample(campaign_id: i64, seed: u64, rate: f64) -> bool {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..].copy_from_slice(&campaign_id.to_le_bytes());
    (fnv1a64(&bytes) >> 11) as f64 / (1u64 << 53) as f64 <= rate
}

/// An owned copy of a sampled campaign's text.
#[derive(Debug, Clone)]
pub struct SampledText {
    id: i64,
    title: Option<String>,
    keywords: Vec<String>,
    description: Option<String>,
    domain: Option<String>,
    host: Option<String>,
    url: Option<String>,
}

impl SampledText {
    fn borrow(&self) -> CampaignText<'_> {
        CampaignText {
            title: self.title.as_deref(),
            keywords: self.keywords.iter().map(String::as_str).collect(),
            description: self.description.as_deref(),
            domain: self.domain.as_deref(),
            host: self.host.as_deref(),
            url: self.url.as_deref(),
        }
    }
}

/// The training sample as vectors, sorted by campaign id, and the vectorizer fitted on it.
#[derive(Debug)]
pub struct Sample {
    pub vectorizer: Vectorizer,
    pub vectors: Vec<SparseVec>,
}

/// The texts of about `rate` of the campaigns, sorted by campaign id.
pub async fn sample_texts(
    ctx: &SessionContext,
    data: &Path,
    rate: f64,
    seed: u64,
) -> anyhow::Result<Vec<SampledText>> {
    let mut tasks = tokio::task::JoinSet::new();
    for mut stream in campaign_streams(ctx, data).await? {
        tasks.spawn(async move {
            let mut picked = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let ids = ids(&batch)?;
                let text = TextColumns::new(&batch)?;
                for (i, id) in ids.values().iter().enumerate() {
                    if ids.is_valid(i) && in_sample(*id, seed, rate) {
                        let t = text.row(i);
                        picked.push(SampledText {
                            id: *id,
                            title: t.title.map(str::to_string),
                            keywords: t.keywords.iter().map(|k| k.to_string()).collect(),
                            description: t.description.map(str::to_string),
                            domain: t.domain.map(str::to_string),
                            host: t.host.map(str::to_string),
                            url: t.url.map(str::to_string),
                        });
                    }
                }
            }
            anyhow::Ok(picked)
        });
    }
    let mut picked = Vec::new();
    while let Some(part) = tasks.join_next().await {
        picked.extend(part??);
    }
    picked.sort_by_key(|t| t.id);
    Ok(picked)
}

/// Fits IDF on the sampled texts and makes their vectors.
pub fn vectorize(texts: &[SampledText], params: &FeatureParams) -> Sample {
    let mut fitter = IdfFitter::new(params);
    let tfs: Vec<SparseVec> = texts.iter().map(|t| fitter.add(&t.borrow())).collect();
    let vectorizer = fitter.finish();
    let vectors = tfs.into_iter().map(|tf| vectorizer.weigh(tf)).collect();
    Sample {
        vectorizer,
        vectors,
    }
}

/// A trained mixture: its vocabulary, counts and each cluster's outlier distance.
#[derive(Debug)]
pub struct Mixture {
    pub vocabulary: Vocabulary,
    pub counts: dmm::Counts,
    pub radius: Vec<f32>,
    /// Training documents (sampled texts with a word in the vocabulary).
    pub docs: usize,
    /// The start of the run kept (see [`dmm::train`]).
    pub init: dmm::Init,
    /// `(β, clusters found)` of each `β` trained (see [`dmm::BetaRule`]).
    pub beta_trials: Vec<(f64, usize)>,
}

/// Trains a Dirichlet multinomial mixture ([`dmm`]) on the sampled texts:
/// each text is the bag of the tokens [`CampaignText::for_each_token`]
/// makes, over the tokens found in at least two texts.
pub fn train_mixture(
    texts: &[SampledText],
    features: &FeatureParams,
    params: &DmmParams,
) -> Mixture {
    let tokens: Vec<Vec<String>> = texts
        .iter()
        .map(|t| {
            let mut tokens = Vec::new();
            t.borrow()
                .for_each_token(features, |tok, _| tokens.push(tok.to_string()));
            tokens
        })
        .collect();
    let vocabulary = Vocabulary::fit(&tokens, 2);
    let (docs, unknown): (Vec<dmm::Doc>, Vec<u32>) = tokens
        .iter()
        .map(|t| vocabulary.doc(t.iter().map(String::as_str)))
        .filter(|(doc, _)| doc.len > 0)
        .unzip();
    let trained = dmm::train(&docs, vocabulary.len(), params);
    let mut distances = vec![Vec::new(); trained.counts.clusters()];
    for ((doc, unknown), z) in docs.iter().zip(&unknown).zip(&trained.assignments) {
        let z = *z as usize;
        distances[z].push(-trained.counts.per_token_log_likelihood(doc, *unknown, z) as f32);
    }
    let radius = distances.into_iter().map(percentile_95).collect();
    Mixture {
        vocabulary,
        counts: trained.counts,
        radius,
        docs: docs.len(),
        init: trained.init,
        beta_trials: trained.beta_trials,
    }
}

/// The 95th percentile (nearest rank) of some distances.
fn percentile_95(mut distances: Vec<f32>) -> f32 {
    distances.sort_by(f32::total_cmp);
    let rank = (distances.len() as f64 * 0.95).ceil() as usize;
    distances
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

fn ids(batch: &RecordBatch) -> anyhow::Result<Int64Array> {
    let column = batch
        .column_by_name("campaign_id")
        .ok_or_else(|| anyhow::anyhow!("no campaign_id column"))?;
    Ok(cast(column, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

/// Sparse spherical k-means over the sample (see [`kmeans`]). Returns the
/// centroids and the iterations of the winning run.
pub fn train(
    vectors: &[SparseVec],
    dim: usize,
    k: usize,
    options: &TrainOptions,
) -> anyhow::Result<(Vec<Vec<f32>>, u64)> {
    anyhow::ensure!(
        vectors.len() >= k,
        "only {} sampled rows for k = {k}: lower --k or raise --sample-rows",
        vectors.len()
    );
    Ok(kmeans::train(vectors, dim, k, options))
}

/// Simplified silhouette (distances to centroids instead of to every point),
/// averaged over the vectors: cheap enough to compare several k.
pub fn simplified_silhouette(centroids: &kmeans::Centroids, vectors: &[SparseVec]) -> f64 {
    let scores = vectors.iter().map(|v| {
        let mut d: Vec<f32> = centroids.squared_distances(v).map(f32::sqrt).collect();
        d.sort_by(f32::total_cmp);
        let (a, b) = (d[0] as f64, d.get(1).copied().unwrap_or(d[0]) as f64);
        if b.max(a) > 0.0 {
            (b - a) / b.max(a)
        } else {
            0.0
        }
    });
    scores.sum::<f64>() / vectors.len().max(1) as f64
}

const HISTOGRAM_BINS: usize = 400;
const HISTOGRAM_MAX: f32 = 2.0;

/// What the scoring pass learns about one cluster.
#[derive(Debug, Clone, Default)]
struct ClusterStats {
    size: u64,
    squared: f64,
    domains: HashMap<String, u64>,
    /// The three most central `(distance, title)`.
    examples: Vec<(f32, String)>,
    histogram: Vec<u64>,
}

impl ClusterStats {
    fn add(&mut self, distance: f32, domain: Option<&str>, title: Option<&str>) {
        self.size += 1;
        self.squared += f64::from(distance * distance);
        if let Some(d) = domain {
            *self.domains.entry(d.to_string()).or_default() += 1;
        }
        if let Some(t) = title {
            self.offer_example(distance, t);
        }
        if self.histogram.is_empty() {
            self.histogram = vec![0; HISTOGRAM_BINS];
        }
        let bin = ((distance / HISTOGRAM_MAX) * HISTOGRAM_BINS as f32) as usize;
        self.histogram[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }

    /// Keeps the three distinct titles nearest the centre, each at its
    /// nearest distance, ties by title: the same three whatever order the
    /// rows come in and however they are split (threads, cluster tasks).
    fn offer_example(&mut self, distance: f32, title: &str) {
        if let Some((d, t)) = self.examples.get(2)
            && (distance, title) >= (*d, t.as_str())
        {
            return;
        }
        match self.examples.iter_mut().find(|(_, e)| e == title) {
            Some(known) => known.0 = known.0.min(distance),
            None => self.examples.push((distance, title.to_string())),
        }
        self.examples
            .sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        self.examples.truncate(3);
    }

    fn merge(&mut self, other: ClusterStats) {
        self.size += other.size;
        self.squared += other.squared;
        for (d, n) in other.domains {
            *self.domains.entry(d).or_default() += n;
        }
        for (d, t) in other.examples {
            self.offer_example(d, &t);
        }
        if self.histogram.is_empty() {
            self.histogram = other.histogram;
        } else {
            self.histogram
                .iter_mut()
                .zip(other.histogram)
                .for_each(|(a, b)| *a += b);
        }
    }

    fn radius(&self) -> f32 {
        let target = (self.size as f64 * 0.95).ceil() as u64;
        let mut seen = 0;
        for (bin, n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen >= target {
                return (bin + 1) as f32 * HISTOGRAM_MAX / HISTOGRAM_BINS as f32;
            }
        }
        HISTOGRAM_MAX
    }
}

/// Result of scoring a data set.
#[derive(Debug)]
pub struct Assigned {
    pub rows: u64,
    /// Mean squared distance.
    pub inertia: f64,
    pub labels: Vec<ClusterLabel>,
}

/// Scores every campaign under `data` with `model`, writing
/// `out/assignments/` (`campaign_id, cluster_id, distance, model_version`), and
/// returns each cluster's label.
pub async fn assign(
    ctx: &SessionContext,
    data: &Path,
    model: Arc<Model>,
    source: Option<ModelSource>,
    out: &Path,
    sink: &SinkOptions,
) -> anyhow::Result<Assigned> {
    let schema = layout::assignments_schema();
    let mut tasks = tokio::task::JoinSet::new();
    let streams = scored_streams(ctx, data, Arc::clone(&model), source).await?;
    for (p, mut stream) in streams.into_iter().enumerate() {
        let model = Arc::clone(&model);
        let mut writer = ParquetSink::new(
            out,
            &format!("part-{p:02}"),
            Arc::clone(&schema),
            &[],
            sink.clone(),
        )?;
        let schema = Arc::clone(&schema);
        tasks.spawn(async move {
            let mut stats = vec![ClusterStats::default(); model.len()];
            while let Some(batch) = stream.next().await {
                let assigned = assigned_rows(&batch?, &schema, &model.meta.version, &mut stats)?;
                writer.write(&assigned)?;
            }
            writer.finish()?;
            anyhow::Ok(stats)
        });
    }
    let mut stats = vec![ClusterStats::default(); model.len()];
    while let Some(part) = tasks.join_next().await {
        for (total, s) in stats.iter_mut().zip(part??) {
            total.merge(s);
        }
    }
    let rows: u64 = stats.iter().map(|s| s.size).sum();
    let inertia = stats.iter().map(|s| s.squared).sum::<f64>() / rows.max(1) as f64;
    let labels = stats
        .into_iter()
        .enumerate()
        .map(|(c, s)| label(&model, c, s))
        .collect();
    Ok(Assigned {
        rows,
        inertia,
        labels,
    })
}

/// The `assignments` rows of a scored batch of campaigns, counted into each
/// cluster's `stats` (size, distances, domains, titles) on the way.
fn assigned_rows(
    batch: &RecordBatch,
    schema: &SchemaRef,
    version: &str,
    stats: &mut [ClusterStats],
) -> anyhow::Result<RecordBatch> {
    let ids = ids(batch)?;
    let (titles, domains) = (
        string_column(batch, "title")?,
        string_column(batch, "domain")?,
    );
    let scored = batch
        .column_by_name("scored")
        .ok_or_else(|| anyhow::anyhow!("no `scored` column"))?
        .as_struct();
    let clusters = scored
        .column_by_name("cluster_id")
        .ok_or_else(|| anyhow::anyhow!("no `cluster_id`"))?
        .as_primitive::<arrow::datatypes::UInt32Type>()
        .clone();
    let distances = scored
        .column_by_name("distance")
        .ok_or_else(|| anyhow::anyhow!("no `distance`"))?
        .as_primitive::<arrow::datatypes::Float32Type>()
        .clone();
    for i in 0..batch.num_rows() {
        let (domain, title) = (
            domains.is_valid(i).then(|| domains.value(i)),
            titles.is_valid(i).then(|| titles.value(i)),
        );
        stats[clusters.value(i) as usize].add(distances.value(i), domain, title);
    }
    let version = StringArray::from_iter_values(std::iter::repeat_n(version, batch.num_rows()));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(clusters),
        Arc::new(distances),
        Arc::new(version),
    ];
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// A cluster in words: its top terms (see [`Model::top_terms`]), most
/// common domains and most central titles.
fn label(model: &Model, cluster: usize, stats: ClusterStats) -> ClusterLabel {
    let mut domains: Vec<(String, u64)> =
        stats.domains.iter().map(|(d, n)| (d.clone(), *n)).collect();
    domains.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ClusterLabel {
        cluster: cluster as u32,
        size: stats.size,
        top_terms: model.top_terms(cluster, 8),
        top_domains: domains.into_iter().take(5).map(|(d, _)| d).collect(),
        examples: stats.examples.iter().map(|(_, t)| t.clone()).collect(),
        radius: model
            .training_radius(cluster)
            .unwrap_or_else(|| stats.radius()),
    }
}

/// The `clusters` table: one row per cluster with its label.
pub fn clusters_batch(labels: &[ClusterLabel], version: &str) -> anyhow::Result<RecordBatch> {
    let list = |get: &dyn Fn(&ClusterLabel) -> &Vec<String>| {
        let mut b = ListBuilder::new(StringBuilder::new());
        for l in labels {
            for s in get(l) {
                b.values().append_value(s);
            }
            b.append(true);
        }
        Arc::new(b.finish()) as Arc<dyn Array>
    };
    Ok(RecordBatch::try_from_iter(vec![
        (
            "cluster_id",
            Arc::new(UInt32Array::from_iter_values(
                labels.iter().map(|l| l.cluster),
            )) as _,
        ),
        (
            "size",
            Arc::new(Int64Array::from_iter_values(
                labels.iter().map(|l| l.size as i64),
            )) as _,
        ),
        ("top_terms", list(&|l| &l.top_terms)),
        ("top_domains", list(&|l| &l.top_domains)),
        ("examples", list(&|l| &l.examples)),
        (
            "radius",
            Arc::new(Float32Array::from_iter_values(
                labels.iter().map(|l| l.radius),
            )) as _,
        ),
        (
            "model_version",
            Arc::new(StringArray::from_iter_values(
                labels.iter().map(|_| version),
            )) as _,
        ),
    ])?)
}

/// Scores `data` with `model` into staged `assignments/` and `clusters/`
/// directories; the caller commits them once it is content.
pub async fn score_into(
    ctx: &SessionContext,
    data: &Path,
    model: Arc<Model>,
    source: Option<ModelSource>,
) -> anyhow::Result<(Assigned, Vec<StagedDir>)> {
    let assignments = StagedDir::create(&data.join(layout::ASSIGNMENTS))?;
    let sink = SinkOptions::default();
    let assigned = assign(
        ctx,
        data,
        Arc::clone(&model),
        source,
        assignments.path(),
        &sink,
    )
    .await?;
    mark(assignments.path(), &model.meta.version, assigned.rows)?;

    let clusters = StagedDir::create(&data.join(layout::CLUSTERS))?;
    let batch = clusters_batch(&assigned.labels, &model.meta.version)?;
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
