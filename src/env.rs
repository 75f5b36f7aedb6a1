//! Every environment variable adlens reads, named once: the CLI takes its
//! `env = ...` defaults from here and the tests clear exactly these.

/// The `ADLENS_*` variables (uv's `EnvVars` pattern).
pub struct EnvVars;

impl EnvVars {
    /// A `tracing` filter for the log on stderr (wins over `-v`).
    pub const ADLENS_LOG: &'static str = "ADLENS_LOG";
    /// The cleaned data directory (`--data`).
    pub const ADLENS_DATA: &'static str = "ADLENS_DATA";
    /// The stream's Parquet directory (`stream --data`, `dashboard --stream-data`).
    pub const ADLENS_STREAM_DATA: &'static str = "ADLENS_STREAM_DATA";
    /// The versioned models directory (`--models`).
    pub const ADLENS_MODELS: &'static str = "ADLENS_MODELS";
    /// Kafka bootstrap servers (`--brokers`).
    pub const ADLENS_BROKERS: &'static str = "ADLENS_BROKERS";
    /// Topic of raw records (`--input-topic`, `produce --topic`).
    pub const ADLENS_INPUT_TOPIC: &'static str = "ADLENS_INPUT_TOPIC";
    /// Topic of results (`--output-topic`).
    pub const ADLENS_OUTPUT_TOPIC: &'static str = "ADLENS_OUTPUT_TOPIC";
    /// Topic of refused records (`--dead-letter-topic`).
    pub const ADLENS_DEAD_LETTER_TOPIC: &'static str = "ADLENS_DEAD_LETTER_TOPIC";
    /// Consumer group of `adlens stream` (`--group`).
    pub const ADLENS_GROUP: &'static str = "ADLENS_GROUP";
    /// Parallel partitions of a query (`--partitions`).
    pub const ADLENS_PARTITIONS: &'static str = "ADLENS_PARTITIONS";
    /// Memory a query may hold before it fails (`--memory-limit`).
    pub const ADLENS_MEMORY_LIMIT: &'static str = "ADLENS_MEMORY_LIMIT";

    /// A Ballista scheduler to run on (`--cluster df://HOST:PORT`).
    pub const ADLENS_CLUSTER: &'static str = "ADLENS_CLUSTER";

    /// An existing tansu binary for the test broker (read by the tests and
    /// `scripts/broker.sh`, not by adlens).
    pub const ADLENS_BROKER_BIN: &'static str = "ADLENS_BROKER_BIN";

    /// Where `make broker` and `make s3` install the test services (read by
    /// the tests and `scripts/broker.sh`, `scripts/s3.sh`, not by adlens;
    /// default `~/.cache/adlens`).
    pub const ADLENS_CACHE: &'static str = "ADLENS_CACHE";

    /// All the variables adlens itself reads, for tools (and tests) that need a clean environment.
    pub const ALL: [&'static str; 12] = [
        Self::ADLENS_LOG,
        Self::ADLENS_DATA,
        Self::ADLENS_STREAM_DATA,
        Self::ADLENS_MODELS,
        Self::ADLENS_BROKERS,
        Self::ADLENS_INPUT_TOPIC,
        Self::ADLENS_OUTPUT_TOPIC,
        Self::ADLENS_DEAD_LETTER_TOPIC,
        Self::ADLENS_GROUP,
        Self::ADLENS_PARTITIONS,
        Self::ADLENS_MEMORY_LIMIT,
        Self::ADLENS_CLUSTER,
    ];
}
