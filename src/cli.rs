//! Command-line definitions. The `///` comments are the `--help` text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::distributed::{self, ClusterUrl};
use crate::env::EnvVars;
use crate::model::online::{self, Forget, OnlineParams};
use crate::storage::Location;

/// Turns raw dumps of ad-campaign records into clean, queryable Parquet and
/// clusters people can act on.
#[derive(Debug, Parser)]
#[command(name = "adlens", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More log output on stderr (-v info, -vv debug); `ADLENS_LOG` takes a
    /// full tracing filter instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No progress bars and no summary; errors are still printed.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a synthetic campaign dump in the real CSV layout.
    Generate(GenerateArgs),
    /// Clean raw CSV dumps into partitioned Parquet, a rejects table and a manifest.
    Preprocess(PreprocessArgs),
    /// Train clusters (k-means or dmm) on the cleaned campaigns into a new model version.
    Batch(BatchArgs),
    /// Score the cleaned campaigns with an existing model (writes assignments).
    Score(ScoreArgs),
    /// Run SQL over every output under a data directory.
    Sql(SqlArgs),
    /// Score campaign records from Kafka against the latest model (or evolve
    /// online topics from it), continuously.
    Stream(Box<StreamArgs>),
    /// Replay a campaign CSV into a Kafka topic (one message per record).
    Produce(ProduceArgs),
    /// Serve a live and historical dashboard over the Parquet outputs.
    Dashboard(DashboardArgs),
    /// Run a node of a Ballista cluster (scheduler or executor) that knows
    /// the adlens functions, for `--cluster df://host:port`.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// The two kinds of cluster node.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Accept jobs from clients and hand their tasks to executors.
    Scheduler(SchedulerArgs),
    /// Run tasks for a scheduler (start one per worker machine).
    Executor(ExecutorArgs),
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address the scheduler's gRPC service listens on (clients use
    /// `--cluster df://HOST:PORT`).
    #[arg(long, default_value = "127.0.0.1:50050")]
    pub bind: SocketAddr,

    /// Seconds without a heartbeat after which an executor is taken for
    /// dead and its tasks are run elsewhere (keep it above the executors'
    /// `--heartbeat-interval`).
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u64).range(1..))]
    pub executor_timeout: u64,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler to join, `HOST:PORT`.
    #[arg(long, value_parser = distributed::parse_host_port)]
    pub scheduler: (String, u16),

    /// Address of the executor's Arrow Flight service (results and shuffle
    /// data); its gRPC service takes the next port unless `--grpc-port` says.
    /// Executors sharing a machine need distinct ports.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub bind: SocketAddr,

    /// Port of the executor's gRPC service (default: the `--bind` port + 1).
    #[arg(long)]
    pub grpc_port: Option<u16>,

    /// Tasks run at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub concurrent_tasks: usize,

    /// Directory for shuffle files and spills (default: a temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,

    /// Seconds between heartbeats to the scheduler.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_interval: u64,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Preprocess and batch output (`campaigns`, `rejects`, `assignments`, `clusters`).
    #[arg(long, short, default_value = "data/clean", env = EnvVars::ADLENS_DATA)]
    pub data: PathBuf,

    /// Stream output (`cluster_windows`, ...), read afresh on every refresh.
    #[arg(long, default_value = "data/stream", env = EnvVars::ADLENS_STREAM_DATA)]
    pub stream_data: PathBuf,

    /// Directory of model versions (for the current model's labels).
    #[arg(long, short, default_value = "models", env = EnvVars::ADLENS_MODELS)]
    pub models: PathBuf,

    /// Port to listen on (0: any free port, printed on stderr).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

/// Kafka connection settings shared by `stream` and `produce`.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    #[arg(long, env = EnvVars::ADLENS_BROKERS)]
    pub brokers: String,

    /// A librdkafka setting, `key=value` (repeatable): SASL, TLS, timeouts.
    /// Applied after adlens's own defaults, so it wins.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::kafka::parse_setting)]
    pub settings: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Topic of raw campaign records.
    #[arg(long, default_value = "campaigns.raw", env = EnvVars::ADLENS_INPUT_TOPIC)]
    pub input_topic: String,

    /// Topic the results go to, one JSON object per record, keyed by campaign id.
    #[arg(long, default_value = "campaigns.scored", env = EnvVars::ADLENS_OUTPUT_TOPIC)]
    pub output_topic: String,

    /// Topic for records that cannot be scored, with the reason and the original payload.
    #[arg(
        long,
        default_value = "campaigns.dead-letter",
        env = EnvVars::ADLENS_DEAD_LETTER_TOPIC
    )]
    pub dead_letter_topic: String,

    /// Also send each result to the topic `PREFIX<cluster>` (e.g. `cluster_3`).
    #[arg(long, value_name = "PREFIX")]
    pub topic_per_cluster: Option<String>,

    /// Consumer group; processes in one group share the input's partitions.
    #[arg(long, default_value = "adlens-stream", env = EnvVars::ADLENS_GROUP)]
    pub group: String,

    /// Directory of model versions; a new `LATEST` is picked up while running.
    #[arg(long, short, default_value = "models", env = EnvVars::ADLENS_MODELS)]
    pub models: PathBuf,

    /// Where `scored/`, `cluster_windows/` and `dead_letters/` Parquet go.
    #[arg(long, short, default_value = "data/stream", env = EnvVars::ADLENS_STREAM_DATA)]
    pub data: PathBuf,

    /// How input messages are encoded.
    #[arg(long, value_enum, default_value_t = crate::stream::decode::InputFormat::Json)]
    pub format: crate::stream::decode::InputFormat,

    /// Where to start in partitions the group has no committed offset for
    /// (partitions with one always resume there).
    #[arg(long, value_enum, default_value_t = crate::kafka::StartFrom::Committed)]
    pub from: crate::kafka::StartFrom,

    /// Most records in one micro-batch.
    #[arg(long, default_value_t = 20_000)]
    pub max_batch_records: usize,

    /// Most payload bytes in one micro-batch (e.g. `64MiB`), so large
    /// messages cannot overflow a batch's 32-bit string offsets.
    #[arg(long, default_value = "64MiB", value_parser = byte_size)]
    pub max_batch_bytes: usize,

    /// Longest a micro-batch waits to fill up, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub max_batch_ms: u64,

    /// How often Parquet files are closed and offsets committed, in
    /// milliseconds; a crash replays at most this much (at-least-once).
    #[arg(long, default_value_t = 5_000)]
    pub checkpoint_ms: u64,

    /// Length of the processing-time windows of `cluster_windows/`, in seconds.
    #[arg(long, default_value_t = 60)]
    pub window_secs: u64,

    /// How often `models/LATEST` is checked, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub model_poll_ms: u64,

    /// Seconds between status lines on stderr (0: none).
    #[arg(long, default_value_t = 10)]
    pub status_secs: u64,

    /// Stop after this many records (then commit and exit).
    #[arg(long)]
    pub max_records: Option<u64>,

    /// Exit after this many seconds without a record, counted from the
    /// moment partitions were assigned.
    #[arg(long)]
    pub idle_exit: Option<u64>,

    /// Larger messages go to the dead-letter topic as `too_large`.
    #[arg(long, default_value = "1MiB", value_parser = small_byte_size)]
    pub max_message_bytes: usize,

    /// Payload bytes a dead letter carries at most; longer payloads are cut
    /// (the letter says so and gives the full size), so a dead letter always
    /// fits the broker's message limit.
    #[arg(long, default_value = "64KiB", value_parser = small_byte_size)]
    pub dead_letter_payload_bytes: usize,

    /// Threads cleaning each micro-batch (default: all cores).
    #[arg(long, env = EnvVars::ADLENS_PARTITIONS)]
    pub partitions: Option<usize>,

    #[command(flatten)]
    pub online: OnlineArgs,
}

/// Online topics (`stream --online`).
#[derive(Debug, Args)]
pub struct OnlineArgs {
    /// Evolve the topics with the stream instead of scoring against a frozen
    /// model: each micro-batch joins existing topics or opens new ones, old
    /// ones fade (see README "Online topics"). Starts from `LATEST`.
    #[arg(long)]
    pub online: bool,

    /// Forget a micro-batch's contribution after this many newer micro-batches
    /// (`10`) or this long after it was processed (`90s`, `30m`, `2h`).
    #[arg(long, default_value = "10", value_parser = forget_after, requires = "online")]
    pub forget_after: Forget,

    /// Weight of a new topic (times the documents counted); larger opens more.
    #[arg(long, default_value_t = online::DEFAULTS.alpha, value_parser = positive, requires = "online")]
    pub alpha: f64,

    /// Prior weight of a word in a topic; larger makes fewer, broader topics.
    #[arg(long, default_value_t = online::DEFAULTS.beta, value_parser = positive, requires = "online")]
    pub beta: f64,

    /// Gibbs sweeps over each micro-batch after its start, at most: they stop
    /// once one moves at most one record in 1,000.
    #[arg(long, default_value_t = online::DEFAULTS.iterations, requires = "online")]
    pub iterations: usize,

    /// New topics each micro-batch's records are dealt into at random before
    /// the sweeps; 0 starts with one pass instead (each record in turn joins
    /// a topic or opens one). More suits micro-batches that bring several
    /// new subjects at once.
    #[arg(long, default_value_t = online::DEFAULTS.fresh_topics, requires = "online")]
    pub fresh_topics: usize,

    /// Documents a topic needs to be born; records in smaller topics are outliers.
    #[arg(long, default_value_t = online::DEFAULTS.min_topic_size, value_parser = clap::value_parser!(u64).range(1..), requires = "online")]
    pub min_topic_size: u64,

    /// Also send each topic event (born, died) as JSON to this topic.
    #[arg(long, value_name = "TOPIC", requires = "online")]
    pub topic_events_topic: Option<String>,

    /// Seed of the online sampler (deterministic per micro-batch).
    #[arg(long, default_value_t = online::DEFAULTS.seed, requires = "online")]
    pub online_seed: u64,
}

impl OnlineArgs {
    pub fn params(&self) -> OnlineParams {
        OnlineParams {
            alpha: self.alpha,
            beta: self.beta,
            iterations: self.iterations,
            fresh_topics: self.fresh_topics,
            forget: self.forget_after,
            min_topic_size: self.min_topic_size,
            seed: self.online_seed,
        }
    }
}

/// `10` (micro-batches) or a duration: `90s`, `30m`, `2h` (at least 1).
fn forget_after(text: &str) -> Result<Forget, String> {
    let err =
        || format!("expected micro-batches (`10`) or a time (`90s`, `30m`, `2h`), got `{text}`");
    let (digits, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |i| text.split_at(i));
    let n: u64 = digits.parse().map_err(|_| err())?;
    if n == 0 {
        return Err(err());
    }
    match unit {
        "" => Ok(Forget::Batches(n)),
        "s" => Ok(Forget::Seconds(n)),
        "m" => Ok(Forget::Seconds(n * 60)),
        "h" => Ok(Forget::Seconds(n * 3600)),
        _ => Err(err()),
    }
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Campaign CSV with the dump's header (local path, `file://`, `s3://`, `.gz`).
    #[arg(long)]
    pub file: String,

    /// Topic to produce to.
    #[arg(long, default_value = "campaigns.raw", env = EnvVars::ADLENS_INPUT_TOPIC)]
    pub topic: String,

    /// Records per second (default: as fast as the broker takes them).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,

    /// Message encoding: JSON objects (as the original producer sent) or CSV lines.
    #[arg(long, value_enum, default_value_t = crate::stream::decode::InputFormat::Json)]
    pub format: crate::stream::decode::InputFormat,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Preprocess output to train on; `assignments/` and `clusters/` are written into it.
    #[arg(long, short, default_value = "data/clean", env = EnvVars::ADLENS_DATA)]
    pub data: PathBuf,

    /// Directory of model versions; `LATEST` in it names the one in use.
    #[arg(long, short, default_value = "models", env = EnvVars::ADLENS_MODELS)]
    pub models: PathBuf,

    /// How campaigns are grouped: `kmeans` (TF-IDF vectors into exactly
    /// `--k` clusters) or `dmm` (GSDMM, a Dirichlet multinomial mixture of
    /// token bags: `--k` is an upper bound and the number of clusters is
    /// found).
    #[arg(long, value_enum, default_value_t = Algorithm::Kmeans)]
    pub algorithm: Algorithm,

    /// Number of clusters (dmm: at most), or `auto` to pick it from
    /// `--k-range` by simplified silhouette (dmm: an upper bound of 100).
    /// Unset: 16 for k-means, `auto` for dmm (whose `β` rule keeps the count
    /// under half its bound, so a small default bound would cap it).
    #[arg(long)]
    pub k: Option<String>,

    /// Candidates for `--k auto`, as `FROM..=TO` (step 4).
    #[arg(long, default_value = "8..=32")]
    pub k_range: String,

    /// Rows in the training sample (drawn by a hash of the id and seed).
    #[arg(long, default_value_t = 100_000)]
    pub sample_rows: u64,

    /// Rows of the sample the centroid seeding draws from (a seeded subset;
    /// the whole sample by default).
    #[arg(long, default_value_t = 100_000)]
    pub batch_rows: usize,

    /// Most k-means iterations per run.
    #[arg(long, default_value_t = 100)]
    pub max_iterations: u64,

    /// Stop when no centroid moves more than this in an iteration.
    #[arg(long, default_value_t = 1e-4)]
    pub tolerance: f64,

    /// Whole k-means runs (seeding and iterations); the lowest inertia is kept.
    #[arg(long, default_value_t = 3)]
    pub n_runs: usize,

    /// Centroid initialisation.
    #[arg(long, value_enum, default_value_t = crate::model::kmeans::Init::KMeansPlusPlus)]
    pub init: crate::model::kmeans::Init,

    /// dmm: prior weight of a cluster's size; larger opens more clusters.
    #[arg(long, default_value_t = 0.1, value_parser = positive)]
    pub alpha: f64,

    /// dmm: prior weight of a word in a cluster; larger lets a campaign join
    /// a cluster that shares fewer of its words (fewer, broader clusters).
    /// Unset: 0.1, doubled while the clusters found fill more than half of
    /// `--k` (so that the texts, not the bound, set the count).
    #[arg(long, value_parser = positive)]
    pub beta: Option<f64>,

    /// dmm: Gibbs sweeps over the sample after the first assignment (at 10,
    /// a random start still held 49 clusters for StackOverflow's 20 tags).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,

    /// Seed of the sample, the initialisation and the batch order.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Feature dimension (hash buckets).
    #[arg(long, default_value_t = 2048)]
    pub dim: usize,

    /// Skip training when the data's manifest is the one the LATEST model was trained on.
    #[arg(long)]
    pub if_changed: bool,

    /// Keep only the newest N model versions (LATEST is never removed).
    #[arg(long)]
    pub keep: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Preprocess output to score; `assignments/` and `clusters/` are written into it.
    #[arg(long, short, default_value = "data/clean", env = EnvVars::ADLENS_DATA)]
    pub data: PathBuf,

    /// A model version directory (default: the LATEST of `--models`).
    #[arg(long)]
    pub model: Option<PathBuf>,

    /// Directory of model versions.
    #[arg(long, short, default_value = "models", env = EnvVars::ADLENS_MODELS)]
    pub models: PathBuf,

    /// Score on a Ballista cluster (`df://HOST:PORT`, see `adlens cluster`):
    /// its executors score the campaigns, so every node must reach `--data`
    /// and the model directory by the same path; this process writes the
    /// tables.
    #[arg(long, env = EnvVars::ADLENS_CLUSTER)]
    pub cluster: Option<ClusterUrl>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of records to write.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,

    /// Output CSV file (written to a temporary file, then renamed).
    #[arg(long)]
    pub out: PathBuf,

    /// Seed: the same seed and row count give the same bytes.
    #[arg(long, default_value_t = 2023)]
    pub seed: u64,

    /// Also write each record's hidden topic (`id,topic`) to this CSV file,
    /// so clustering quality can be measured against the truth.
    #[arg(long)]
    pub truth: Option<PathBuf>,

    /// Share of records made dirty on purpose (ragged rows, bad timestamps,
    /// bad ids, empty text, duplicates, invisible characters), 0 to 1.
    #[arg(long, default_value_t = 0.01)]
    pub dirty_rate: f64,
}

#[derive(Debug, Args)]
pub struct PreprocessArgs {
    /// Raw CSV files: local paths or `file://` / `s3://` URLs. `.gz` files are
    /// decompressed on the fly.
    #[arg(long, short, num_args = 1.., required = true)]
    pub input: Vec<String>,

    /// Output directory, replaced atomically when the run succeeds; or an
    /// `s3://bucket/prefix`, written locally (under `TMPDIR`), uploaded as a
    /// new run and published by writing `_LATEST` last.
    #[arg(long, short, env = EnvVars::ADLENS_DATA)]
    pub output: Location,

    /// Clean on a Ballista cluster (`df://HOST:PORT`, see `adlens cluster`):
    /// each input file is parsed and cleaned by an executor (so every node
    /// must reach the inputs by the same path or URL); this process writes
    /// the output and removes duplicates as a local run does.
    #[arg(long, env = EnvVars::ADLENS_CLUSTER)]
    pub cluster: Option<ClusterUrl>,

    /// Threads cleaning and writing in parallel (default: all cores).
    #[arg(long, env = EnvVars::ADLENS_PARTITIONS)]
    pub partitions: Option<usize>,

    /// Records per Arrow batch handed to DataFusion.
    // 65,536 against 8,192 on the 3M bench file (10 alternating pairs, 2
    // cores): 0.93x wall and CPU, +240 MiB peak (940 MiB). Every stage got
    // cheaper alike (zstd, the CSV parse, the language path), which fits
    // the two cores switching between the reader, cleaning and writing
    // tasks less often, each with its tables in cache for longer.
    #[arg(long, default_value_t = 65_536)]
    pub batch_size: usize,

    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 262_144)]
    pub row_group_rows: usize,

    /// Memory the run may hold for its own work (e.g. `2GiB`, `512MiB`):
    /// DataFusion's pool while cleaning, and the keys held at a time by the
    /// duplicate pass, which makes more passes over the ids rather than use
    /// more. The Parquet writers' buffers come on top (at most 128 MiB per
    /// partition).
    #[arg(long, default_value = "2GiB", env = EnvVars::ADLENS_MEMORY_LIMIT, value_parser = byte_size)]
    pub memory_limit: usize,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Data directory (or `s3://bucket/prefix`) whose outputs (`campaigns`,
    /// `rejects`, ...) become tables.
    #[arg(long, short, default_value = "data/clean", env = EnvVars::ADLENS_DATA)]
    pub data: Location,

    /// Run this query and exit (repeatable; run in order).
    #[arg(short = 'c', long = "command")]
    pub commands: Vec<String>,

    /// Run the `;`-separated statements of this file and exit.
    #[arg(short, long)]
    pub file: Option<PathBuf>,

    /// How results are printed on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Let statements change the data directory's tables (INSERT, DELETE,
    /// UPDATE, DROP, COPY TO a path inside it); refused by default.
    #[arg(long)]
    pub allow_writes: bool,

    /// Run the queries on a Ballista cluster (`df://HOST:PORT`, see `adlens
    /// cluster`); its executors must reach `--data` by the same path or URL.
    #[arg(long, env = EnvVars::ADLENS_CLUSTER)]
    pub cluster: Option<ClusterUrl>,
}

/// Output format of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned table for people.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row (newline-delimited).
    Json,
}

/// The clustering algorithm of `adlens batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    Kmeans,
    Dmm,
}

impl From<Algorithm> for crate::model::artifact::Algorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::Kmeans => Self::Kmeans,
            Algorithm::Dmm => Self::Dmm,
        }
    }
}

/// A finite number above zero.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("expected a number above 0, got `{text}`")),
    }
}

/// A byte size such as `64KiB` or `1000`.
fn small_byte_size(text: &str) -> Result<usize, String> {
    crate::engine::parse_byte_size(text)
        .ok_or_else(|| "expected a size such as `64KiB` or `1000`".to_string())
}

/// A byte size such as `2GiB`, `512MiB` or `1000000`, at least 1 MiB.
fn byte_size(text: &str) -> Result<usize, String> {
    match crate::engine::parse_byte_size(text) {
        Some(n) if n >= 1 << 20 => Ok(n),
        Some(_) => Err("must be at least 1MiB".into()),
        None => Err("expected a size such as `2GiB`, `512MiB` or `1000000`".into()),
    }
}
