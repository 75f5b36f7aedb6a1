//! The DataFusion session every command shares: configuration, the adlens
//! UDFs, the embedded SQL of `sql/`, and the schema of raw records that the
//! cleaning SQL reads (`raw_campaigns`), whether they come from a CSV dump or
//! a Kafka micro-batch.

pub mod udfs;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;
use sha2::{Digest, Sha256};

/// The cleaning rules: defines the `cleaned_campaigns` view over `raw_campaigns`.
pub const PREPROCESS_SQL: &str = include_str!("../../sql/preprocess.sql");
/// Finds the records that lose to a newer record with the same id.
pub const DUPLICATES_SQL: &str = include_str!("../../sql/duplicates.sql");
/// Rewrites one partition without the losing duplicates.
pub const DROP_DUPLICATES_SQL: &str = include_str!("../../sql/drop_duplicates.sql");

/// Name of the table the cleaning SQL reads.
pub const RAW_TABLE: &str = "raw_campaigns";
/// Name of the view the cleaning SQL defines.
pub const CLEANED_VIEW: &str = "cleaned_campaigns";

/// The six text fields of a raw record, in the CSV header's order.
pub const RAW_FIELDS: [&str; 6] = [
    "creation_time",
    "id",
    "url",
    "title",
    "keywords",
    "description",
];

/// Schema of `raw_campaigns`: lineage, the field count as read, the whole
/// record for ragged rows (whose fields cannot be trusted), and the six fields.
pub fn raw_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("field_count", DataType::Int32, false),
        Field::new("raw_record", DataType::Utf8, true),
    ];
    fields.extend(
        RAW_FIELDS
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// How a session is sized.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Parallel partitions (threads doing the work).
    pub partitions: usize,
    /// Rows per batch inside DataFusion.
    pub batch_size: usize,
    /// Memory DataFusion may use before spilling, in bytes.
    pub memory_limit: Option<usize>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            partitions: default_partitions(),
            batch_size: 8192,
            memory_limit: None,
        }
    }
}

/// All cores, as DataFusion would pick.
pub fn default_partitions() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A session with the adlens UDFs registered and the given sizing.
pub fn session(config: &EngineConfig) -> Result<SessionContext> {
    let session_config = SessionConfig::new()
        .with_target_partitions(config.partitions.max(1))
        .with_batch_size(config.batch_size)
        .with_information_schema(true);
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = config.memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    let ctx = SessionContext::new_with_config_rt(session_config, runtime.build_arc()?);
    for udf in udfs::all() {
        ctx.register_udf(udf);
    }
    Ok(ctx)
}

/// Plans and runs every `;`-separated statement of `sql` in order, returning
/// the DataFrame of each (DDL statements run as they are planned).
pub async fn run_statements(ctx: &SessionContext, sql: &str) -> Result<Vec<DataFrame>> {
    let mut frames = Vec::new();
    for statement in DFParser::parse_sql(sql)? {
        let plan = ctx.state().statement_to_plan(statement).await?;
        frames.push(ctx.execute_logical_plan(plan).await?);
    }
    Ok(frames)
}

/// SHA-256 of all the SQL that shapes the output, so a manifest tells which
/// rules made a data set.
pub fn sql_hash() -> String {
    let mut hasher = Sha256::new();
    for sql in [PREPROCESS_SQL, DUPLICATES_SQL, DROP_DUPLICATES_SQL] {
        hasher.update(sql.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// Parses a byte size such as `512MiB`, `2GiB`, `4G` or `1000000`.
pub fn parse_byte_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * scale) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_byte_sizes() {
        assert_eq!(parse_byte_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_byte_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_byte_size("1000"), Some(1000));
        assert_eq!(parse_byte_size("lots"), None);
    }
}
