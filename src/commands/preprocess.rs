//! `adlens preprocess`: raw CSV dumps to cleaned, month-partitioned Parquet,
//! a rejects table and a manifest, through the cleaning SQL of `sql/`.
//!
//! A scan of the inputs lists the ids they repeat ([`crate::id_scan`]).
//! Then one pass: a reader thread parses the CSV into Arrow batches,
//! DataFusion runs `cleaned_campaigns` over them in N partitions, and each
//! partition routes its kept and rejected rows to its own Parquet files, kept
//! rows with a repeated id to staged files. The duplicate pass compares the
//! staged rows and keeps one per id (newest wins) within the memory limit
//! ([`crate::dedup`]). Everything lands in a staging directory that
//! replaces the output only on success.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::{and, cast, filter, filter_record_batch, is_null, not};
use arrow::datatypes::{DataType, Int64Type, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::cli::PreprocessArgs;
use crate::dedup;
use crate::distributed::{self, ClusterUrl};
use crate::engine::{self, EngineConfig};
use crate::error;
use crate::id_scan::{self, Staging};
use crate::ingest::{self, InputFile};
use crate::layout::{self, StagedDir};
use crate::manifest::{self, Counts, InputEntry, Manifest};
use crate::raw_scan::{RawFiles, RawFilesTable};
use crate::storage::{self, Location};
use crate::writer::{ParquetSink, SinkOptions};

/// Columns of the view that describe a rejection, not a campaign.
const REJECT_ONLY: [&str; 2] = ["reject_reason", "raw_text"];
/// Columns of the rejects table, in order.
const REJECT_COLUMNS: [&str; 7] = [
    "source_file",
    "source_input",
    "source_line",
    "reject_reason",
    "raw_text",
    "campaign_id",
    "created_at",
];

pub async fn run(args: &PreprocessArgs, progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut inputs = Vec::with_capacity(args.input.len());
    for input in &args.input {
        inputs.push(InputFile::resolve(input).await?);
    }
    let config = EngineConfig {
        partitions: args.partitions.unwrap_or_else(engine::default_partitions),
        batch_size: args.batch_size,
        memory_limit: Some(args.memory_limit),
    };
    let sink = sink_options(args.row_group_rows);
    // Handlers are installed now, before anything is written: `ctrl_c()`
    // would install its own only when first polled, leaving a window in
    // which a signal kills the process with its staging directory behind.
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    // An object-store output is built locally, then uploaded (kept alive
    // until the end of the run, the scratch directory goes with it).
    let (local_target, _scratch) = match &args.output {
        Location::Local(dir) => (dir.clone(), None),
        Location::Store(_) => {
            let scratch = Scratch::create()?;
            (scratch.0.join("out"), Some(scratch))
        }
    };
    let staged = StagedDir::create(&local_target)?;

    let cluster = args.cluster.as_ref();
    let work = preprocess(&inputs, staged.path(), &config, &sink, progress, cluster);
    let manifest = tokio::select! {
        result = work => result?,
        _ = interrupt.recv() => bail!("interrupted; `{}` was left as it was", args.output),
        _ = terminate.recv() => bail!("terminated; `{}` was left as it was", args.output),
    };
    let mut manifest = manifest;
    manifest
        .timings_ms
        .insert("total".into(), started.elapsed().as_millis() as u64);
    manifest
        .write(staged.path())
        .context("writing the manifest")?;
    staged
        .commit()
        .with_context(|| format!("moving the output into `{}`", local_target.display()))?;
    if let Location::Store(url) = &args.output {
        // Interrupted here, nothing is published: `_LATEST` is written last,
        // and the next run deletes the half-uploaded one.
        let run = storage::publish_run(&local_target, url)
            .await
            .map_err(|e| error::Error::output(url.as_str(), e))?;
        tracing::info!("published run `{run}` under `{url}`");
    }
    if progress {
        eprint!("{}", summary(&manifest, &args.output, started.elapsed()));
    }
    Ok(())
}

/// How the campaigns and rejects are written: ids looked up by bloom filter,
/// the columns of (nearly) distinct values without dictionaries, the free
/// text without statistics, raw URLs compressed fast (see [`SinkOptions`]).
fn sink_options(row_group_rows: usize) -> SinkOptions {
    let names = |columns: &[&str]| columns.iter().map(|c| c.to_string()).collect();
    SinkOptions {
        row_group_rows,
        bloom_columns: names(&["campaign_id"]),
        plain_columns: names(&["campaign_id", "created_at", "source_line"]),
        free_text_columns: names(&["raw_url", "url", "title", "description", "raw_text"]),
        fast_compression_columns: names(&["raw_url"]),
        ..SinkOptions::default()
    }
}

/// Runs both passes into `out` and returns the manifest (without the total time).
async fn preprocess(
    inputs: &[InputFile],
    out: &Path,
    config: &EngineConfig,
    sink: &SinkOptions,
    progress: bool,
    cluster: Option<&ClusterUrl>,
) -> anyhow::Result<Manifest> {
    let limit = config.memory_limit.unwrap_or(usize::MAX);
    let scan_started = Instant::now();
    let staging = Arc::new(staging_for(inputs, limit).await?);
    let scan_ms = scan_started.elapsed().as_millis() as u64;
    let clean_started = Instant::now();
    let pass = clean_and_write(inputs, out, config, sink, progress, cluster, staging)
        .await
        .map_err(|e| error::explain_memory(e, "cleaning the records", limit))?;
    let mut counts = pass.counts;
    let finals_distinct = tokio::task::spawn_blocking(move || distinct(pass.final_ids)).await?;
    if !finals_distinct {
        tracing::warn!("the id scan missed a repeated id: the duplicate pass compares every row");
    }
    let clean_ms = clean_started.elapsed().as_millis() as u64;

    let dedup_started = Instant::now();
    let dedup = dedup_pass(out, sink, limit, finals_distinct).await?;
    if dedup.rows + dedup.dropped != counts.rows_out {
        bail!(
            "the duplicate pass read {} rows where the cleaning pass wrote {}",
            dedup.rows + dedup.dropped,
            counts.rows_out
        );
    }
    counts.duplicates_dropped = dedup.dropped;
    counts.rows_out = dedup.rows;
    if !counts.balanced() {
        bail!("record counts do not add up: {counts:?}");
    }
    let timings_ms = BTreeMap::from([
        ("id_scan".into(), scan_ms),
        ("clean_and_write".into(), clean_ms),
        ("dedup".into(), dedup_started.elapsed().as_millis() as u64),
    ]);
    let settings = BTreeMap::from([
        ("partitions".into(), config.partitions.into()),
        ("batch_size".into(), config.batch_size.into()),
        ("row_group_rows".into(), sink.row_group_rows.into()),
        ("dedup_rows_staged".into(), pass.staged.into()),
        ("dedup_passes".into(), dedup.passes.into()),
        ("dedup_files_rewritten".into(), dedup.files_rewritten.into()),
    ]);
    manifest_for(inputs, out, counts, timings_ms, settings)
}

/// The duplicate pass over the campaigns the cleaning pass wrote (see
/// [`dedup`]), on a blocking thread.
async fn dedup_pass(
    out: &Path,
    sink: &SinkOptions,
    limit: usize,
    finals_distinct: bool,
) -> anyhow::Result<dedup::DedupStats> {
    let campaigns = out.join(layout::CAMPAIGNS);
    let sink = sink.clone();
    tokio::task::spawn_blocking(move || {
        if !campaigns.exists() {
            return Ok(dedup::DedupStats::default());
        }
        dedup::drop_duplicates(&campaigns, limit, &sink, finals_distinct)
    })
    .await?
    .context("dropping duplicate ids")
}

/// The manifest of a run that wrote `out` from `inputs`.
fn manifest_for(
    inputs: &[InputFile],
    out: &Path,
    counts: Counts,
    timings_ms: BTreeMap<String, u64>,
    settings: BTreeMap<String, serde_json::Value>,
) -> anyhow::Result<Manifest> {
    let mut outputs = BTreeMap::new();
    outputs.insert(
        layout::CAMPAIGNS.into(),
        manifest::describe_output(&out.join(layout::CAMPAIGNS), counts.rows_out)?,
    );
    outputs.insert(
        layout::REJECTS.into(),
        manifest::describe_output(&out.join(layout::REJECTS), counts.rejected)?,
    );
    Ok(Manifest {
        format_version: manifest::FORMAT_VERSION,
        adlens_version: env!("CARGO_PKG_VERSION").into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        sql_sha256: engine::sql_hash(),
        inputs: inputs
            .iter()
            .map(|i| InputEntry {
                path: i.path.clone(),
                bytes: i.bytes,
                modified: i.modified.clone(),
            })
            .collect(),
        counts,
        outputs,
        timings_ms,
        settings,
    })
}

/// Which kept rows the cleaning pass stages for the duplicate pass: those
/// whose id the inputs repeat, when every input can be read twice cheaply
/// and its ids fit in half the memory limit (8 bytes each, and the copy
/// that sorts them); otherwise every row.
async fn staging_for(inputs: &[InputFile], limit: usize) -> anyhow::Result<Staging> {
    let paths: Option<Vec<PathBuf>> = inputs
        .iter()
        .map(|i| i.rereadable_path().map(Path::to_path_buf))
        .collect();
    let Some(paths) = paths else {
        return Ok(Staging::All);
    };
    let staging = tokio::task::spawn_blocking(move || id_scan::scan(&paths, limit / 16))
        .await?
        .context("scanning the inputs for repeated ids")?;
    if let Staging::Repeated(ids) = &staging {
        tracing::debug!("{} ids occur more than once in the inputs", ids.len());
    }
    Ok(staging)
}

/// Whether the ids of the rows written unstaged are distinct, as the id
/// scan promised (sorts them in place).
fn distinct(mut ids: Vec<i64>) -> bool {
    use rayon::slice::ParallelSliceMut;
    ids.par_sort_unstable();
    ids.windows(2).all(|pair| pair[0] != pair[1])
}

/// What the cleaning pass wrote.
struct CleanPass {
    counts: Counts,
    /// Kept rows staged for the duplicate pass.
    staged: u64,
    /// The ids of the kept rows written in their final form.
    final_ids: Vec<i64>,
}

/// The cleaning pass: every record read, cleaned, and written as kept or
/// rejected; returns the counts of what was read and written.
async fn clean_and_write(
    inputs: &[InputFile],
    out: &Path,
    config: &EngineConfig,
    sink: &SinkOptions,
    progress: bool,
    cluster: Option<&ClusterUrl>,
    staging: Arc<Staging>,
) -> anyhow::Result<CleanPass> {
    let (ctx, reader) = match cluster {
        Some(url) => (cluster_source(inputs, config, url).await?, None),
        None => {
            let (ctx, reader) = local_source(inputs, config, progress)?;
            (ctx, Some(reader))
        }
    };
    let plan = cleaning_plan(&ctx).await?;
    let view_schema = plan.schema();
    let campaign_schema = project(&view_schema, |name| {
        !REJECT_ONLY.contains(&name) && name != layout::PARTITION_COLUMN
    });
    let reject_schema = project_ordered(&view_schema, &REJECT_COLUMNS)?;
    let mut writers = tokio::task::JoinSet::new();
    for partition in 0..plan.output_partitioning().partition_count() {
        let stream = plan.execute(partition, ctx.task_ctx())?;
        let schemas = [&campaign_schema, &reject_schema];
        let targets = PartitionTargets::new(out, partition, schemas, sink, &staging)?;
        writers.spawn(write_partition(stream, targets));
    }
    let (mut pass, failure) = joined(writers).await?;
    // The reader's error (bad header, invalid UTF-8, ...) names the file and
    // line, so it wins over what it made the writers see.
    let records_in = match reader {
        Some(reader) => Some(reader.finish().await?),
        None => None,
    };
    if let Some(e) = failure {
        return Err(e.context("cleaning and writing"));
    }
    // On a cluster the executors read: every record they read comes out of
    // the cleaning view kept or rejected, so the two add up to it.
    let counts = &mut pass.counts;
    counts.records_in = records_in.unwrap_or(counts.rows_out + counts.rejected);
    Ok(pass)
}

/// The physical plan of `sql/preprocess.sql`'s cleaned view over the
/// `raw_campaigns` registered on `ctx`.
async fn cleaning_plan(ctx: &SessionContext) -> anyhow::Result<Arc<dyn ExecutionPlan>> {
    engine::run_statements(ctx, engine::PREPROCESS_SQL)
        .await
        .context("loading sql/preprocess.sql")?;
    let plan = ctx
        .table(engine::CLEANED_VIEW)
        .await?
        .create_physical_plan()
        .await?;
    tracing::debug!(
        "cleaning plan:\n{}",
        datafusion::physical_plan::displayable(plan.as_ref()).indent(true)
    );
    Ok(plan)
}

/// What every partition's writer wrote, and the first writer error (all
/// writers are waited for, so none is still writing when the run ends).
async fn joined(
    mut writers: tokio::task::JoinSet<anyhow::Result<PartitionCounts>>,
) -> anyhow::Result<(CleanPass, Option<anyhow::Error>)> {
    let mut pass = CleanPass {
        counts: Counts::default(),
        staged: 0,
        final_ids: Vec::new(),
    };
    let mut failure = None;
    while let Some(joined) = writers.join_next().await {
        match joined? {
            Ok(part) => pass.merge(part),
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    Ok((pass, failure))
}

/// The local reader: one thread parsing the inputs into the partitions of
/// `raw_campaigns`, with a progress bar over the bytes it reads.
struct LocalReader {
    handle: tokio::task::JoinHandle<Result<ingest::IngestStats, error::Error>>,
    bar: crate::commands::progress::ReadProgress,
}

impl LocalReader {
    /// The records read, or the reader's error.
    async fn finish(self) -> anyhow::Result<u64> {
        let ingested = self.handle.await??;
        drop(self.bar);
        Ok(ingested.records)
    }
}

/// A local session whose `raw_campaigns` is fed by a [`LocalReader`].
fn local_source(
    inputs: &[InputFile],
    config: &EngineConfig,
    progress: bool,
) -> anyhow::Result<(SessionContext, LocalReader)> {
    let ctx = engine::session(config)?;
    let (table, senders) = ingest::channel_table(config.partitions)?;
    ctx.register_table(engine::RAW_TABLE, Arc::new(table))?;
    let total_bytes: u64 = inputs.iter().map(|i| i.bytes).sum();
    let counters = Arc::new(ingest::Counters::default());
    let bar = crate::commands::progress::ReadProgress::start(
        total_bytes,
        Arc::clone(&counters),
        progress,
    );
    let inputs = inputs.to_vec();
    let runtime = tokio::runtime::Handle::current();
    let batch_size = config.batch_size;
    let handle = tokio::task::spawn_blocking(move || {
        ingest::read_inputs(&inputs, senders, batch_size, counters, &runtime)
    });
    Ok((ctx, LocalReader { handle, bar }))
}

/// A cluster session whose `raw_campaigns` is read by the executors, one
/// input file per task ([`RawFilesTable`]); the cleaned rows stream back
/// here to be written, so the output and its commit are those of a local run.
async fn cluster_source(
    inputs: &[InputFile],
    config: &EngineConfig,
    url: &ClusterUrl,
) -> anyhow::Result<SessionContext> {
    let ctx = distributed::client(url, config).await?;
    let spec = RawFiles {
        files: inputs.iter().map(|i| i.path.clone()).collect(),
        batch_size: config.batch_size,
    };
    ctx.register_table(engine::RAW_TABLE, Arc::new(RawFilesTable { spec }))?;
    Ok(ctx)
}

struct PartitionTargets {
    /// Kept rows in their final form.
    campaigns: ParquetSink,
    /// Kept rows the duplicate pass must compare.
    staged: ParquetSink,
    staging: Arc<Staging>,
    rejects: ParquetSink,
}

impl PartitionTargets {
    /// The sinks of cleaning partition `partition` under `out`, writing
    /// `[campaigns, rejects]` schemas.
    fn new(
        out: &Path,
        partition: usize,
        [campaign_schema, reject_schema]: [&SchemaRef; 2],
        sink: &SinkOptions,
        staging: &Arc<Staging>,
    ) -> anyhow::Result<Self> {
        let campaigns = |prefix: &str, options: SinkOptions| {
            ParquetSink::new(
                &out.join(layout::CAMPAIGNS),
                &format!("{prefix}part-{partition:02}"),
                Arc::clone(campaign_schema),
                &[layout::PARTITION_COLUMN],
                options,
            )
        };
        Ok(Self {
            campaigns: campaigns("", sink.clone())?,
            // Rewritten by the duplicate pass into their final form.
            staged: campaigns(dedup::STAGED_PREFIX, sink.staging())?,
            staging: Arc::clone(staging),
            rejects: ParquetSink::new(
                &out.join(layout::REJECTS),
                &format!("part-{partition:02}"),
                Arc::clone(reject_schema),
                &[],
                sink.clone(),
            )?,
        })
    }

    /// Writes the rows `kept` selects, staged or final as [`Staging`]
    /// says; notes the final ones' ids. Each sink filters the whole batch
    /// once: a mask selecting every row or none copies nothing, where
    /// filtering the kept rows out first and then splitting them copied
    /// most batches twice.
    fn write_kept(
        &mut self,
        batch: &RecordBatch,
        kept: &BooleanArray,
        final_ids: &mut Vec<i64>,
    ) -> anyhow::Result<()> {
        let staged = match &*self.staging {
            Staging::All => kept.clone(),
            Staging::Repeated(_) => {
                let ids = batch
                    .column_by_name("campaign_id")
                    .context("no campaign_id column")?
                    .as_primitive::<Int64Type>();
                // Kept rows have an id: NULL is `bad_id`.
                ids.iter()
                    .zip(kept)
                    .map(|(id, kept)| {
                        Some(kept == Some(true) && id.is_some_and(|id| self.staging.stages(id)))
                    })
                    .collect()
            }
        };
        self.staged.write_selected(batch, &staged)?;
        let finals = and(kept, &not(&staged)?)?;
        let ids = batch
            .column_by_name("campaign_id")
            .context("no campaign_id column")?;
        let ids = filter(ids, &finals)?;
        final_ids.extend(ids.as_primitive::<Int64Type>().values().iter());
        Ok(self.campaigns.write_selected(batch, &finals)?)
    }
}

/// Rows one partition kept and rejected.
#[derive(Default)]
struct PartitionCounts {
    kept: u64,
    staged: u64,
    final_ids: Vec<i64>,
    rejected_by_reason: BTreeMap<String, u64>,
}

impl CleanPass {
    fn merge(&mut self, part: PartitionCounts) {
        let counts = &mut self.counts;
        counts.rows_out += part.kept;
        for (reason, n) in part.rejected_by_reason {
            counts.rejected += n;
            *counts.rejected_by_reason.entry(reason).or_default() += n;
        }
        self.staged += part.staged;
        self.final_ids.extend(part.final_ids);
    }
}

/// Drains one partition of the cleaning plan into its two sinks.
async fn write_partition(
    mut stream: SendableRecordBatchStream,
    mut targets: PartitionTargets,
) -> anyhow::Result<PartitionCounts> {
    let mut counts = PartitionCounts::default();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let reasons = cast(
            batch
                .column_by_name("reject_reason")
                .context("no reject_reason column")?,
            &DataType::Utf8,
        )?;
        let kept = is_null(&reasons)?;
        targets.write_kept(&batch, &kept, &mut counts.final_ids)?;
        if reasons.null_count() == batch.num_rows() {
            continue;
        }
        let rejected = filter_record_batch(&batch, &not(&kept)?)?;
        targets.rejects.write(&rejected)?;
        let rejected_reasons = cast(
            rejected
                .column_by_name("reject_reason")
                .context("no reject_reason")?,
            &DataType::Utf8,
        )?;
        for reason in rejected_reasons.as_string::<i32>().iter().flatten() {
            *counts
                .rejected_by_reason
                .entry(reason.to_string())
                .or_default() += 1;
        }
    }
    counts.staged = targets.staged.finish()?;
    counts.kept = targets.campaigns.finish()? + counts.staged;
    targets.rejects.finish()?;
    Ok(counts)
}

fn project(schema: &Schema, keep: impl Fn(&str) -> bool) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| keep(f.name()))
        .cloned()
        .collect();
    Arc::new(Schema::new(fields))
}

fn project_ordered(schema: &Schema, names: &[&str]) -> anyhow::Result<SchemaRef> {
    let fields = names
        .iter()
        .map(|name| Ok(Arc::new(schema.field_with_name(name)?.clone())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

/// A local directory an object store output is written to before it is
/// uploaded; removed however the run ends.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("adlens-upload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the local scratch directory `{}`", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The one-screen report printed at the end of a run.
fn summary(manifest: &Manifest, output: &Location, elapsed: Duration) -> String {
    let c = &manifest.counts;
    let secs = elapsed.as_secs_f64().max(1e-9);
    let bytes: u64 = manifest.inputs.iter().map(|i| i.bytes).sum();
    let mut text = format!(
        "preprocessed {} records ({:.1} MB) in {:.1}s: {:.0} rows/s, {:.1} MB/s\n",
        c.records_in,
        bytes as f64 / 1e6,
        secs,
        c.records_in as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    text += &format!(
        "  kept        {:>12}  -> {}/{}\n",
        c.rows_out,
        output.to_string().trim_end_matches('/'),
        layout::CAMPAIGNS
    );
    text += &format!(
        "  rejected    {:>12}  -> {}/{}\n",
        c.rejected,
        output.to_string().trim_end_matches('/'),
        layout::REJECTS
    );
    for (reason, n) in &c.rejected_by_reason {
        text += &format!("    {reason:<18}{n:>8}\n");
    }
    text += &format!(
        "  duplicates  {:>12}  (dropped; newest creation_time kept)\n",
        c.duplicates_dropped
    );
    if let Some(out) = manifest.outputs.get(layout::CAMPAIGNS) {
        text += &format!(
            "  {} Parquet files, {:.1} MB, months {}\n",
            out.files,
            out.bytes as f64 / 1e6,
            match (out.partitions.first(), out.partitions.last()) {
                (Some(a), Some(b)) => format!("{a} .. {b}"),
                _ => "none".into(),
            }
        );
    }
    text
}
