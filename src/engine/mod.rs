//! The DataFusion session every command shares: configuration, the adlens
//! UDFs and the embedded SQL of `sql/`. The records the cleaning SQL reads
//! (`raw_campaigns`) are defined in [`crate::record`].

pub mod udfs;

use datafusion::dataframe::DataFrame;
use datafusion::error::Result;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;
use sha2::{Digest, Sha256};

use std::path::Path;

use arrow::datatypes::DataType;
use datafusion::prelude::ParquetReadOptions;

use crate::error::Error;
use crate::layout;
use crate::storage::{self, Location};

/// The cleaning rules: defines the `cleaned_campaigns` view over `raw_campaigns`.
pub const PREPROCESS_SQL: &str = include_str!("../../sql/preprocess.sql");

/// Name of the table the cleaning SQL reads.
pub const RAW_TABLE: &str = "raw_campaigns";
/// Name of the view the cleaning SQL defines.
pub const CLEANED_VIEW: &str = "cleaned_campaigns";

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

/// The sizing and optimizer settings every adlens session takes, local or
/// on a cluster.
pub fn session_config(config: &EngineConfig) -> SessionConfig {
    let mut session = SessionConfig::new()
        .with_target_partitions(config.partitions.max(1))
        .with_batch_size(config.batch_size)
        .with_information_schema(true);
    // Off: it moves struct field accesses towards the scans, and moving
    // `campaign_tags(...)['lang']` copies the UDF (and the cleaning UDFs under
    // it) into every place a field is read, so the cleaning SQL would run
    // the language detector twice per row. adlens's tables have no struct
    // columns for it to prune.
    session
        .options_mut()
        .optimizer
        .enable_leaf_expression_pushdown = false;
    session
}

/// The adlens UDFs, registered on `ctx`.
pub fn register_udfs(ctx: &SessionContext) {
    for udf in udfs::all() {
        ctx.register_udf(udf);
    }
}

/// A session with the adlens UDFs registered and the given sizing.
pub fn session(config: &EngineConfig) -> Result<SessionContext> {
    let session_config = session_config(config);
    let mut runtime =
        RuntimeEnvBuilder::new().with_object_store_registry(storage::Registry::shared());
    if let Some(limit) = config.memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    let ctx = SessionContext::new_with_config_rt(session_config, runtime.build_arc()?);
    register_udfs(&ctx);
    Ok(ctx)
}

/// Registers every table found under `data` on `ctx`, by its directory
/// name (`campaigns`, `rejects`, ...), with its `key=value` directories as
/// partition columns. An object store output is read at its published run
/// ([`storage::published_prefix`]).
pub async fn register_tables(
    ctx: &SessionContext,
    data: &Location,
) -> std::result::Result<(), Error> {
    let tables = match data {
        Location::Local(dir) => local_tables(dir)?,
        Location::Store(url) => store_tables(url).await?,
    };
    for (name, location, partition_columns) in tables {
        let partitions = partition_columns
            .into_iter()
            .map(|c| (c, DataType::Utf8))
            .collect();
        let options = ParquetReadOptions::default().table_partition_cols(partitions);
        ctx.register_parquet(&name, &location, options)
            .await
            .map_err(|e| Error::input(&location, None, format!("table `{name}`: {e}")))?;
        tracing::info!("table `{name}` from `{location}`");
    }
    Ok(())
}

/// A table to register: name, path or URL, partition columns.
type TableSource = (String, String, Vec<String>);

fn local_tables(data: &Path) -> std::result::Result<Vec<TableSource>, Error> {
    let shown = data.display().to_string();
    if !data.is_dir() {
        return Err(Error::input(
            shown,
            None,
            "no such data directory; run `adlens preprocess` first",
        ));
    }
    let tables =
        layout::find_tables(data).map_err(|e| Error::input(&shown, None, e.to_string()))?;
    Ok(tables
        .into_iter()
        .map(|t| {
            (
                t.name,
                t.path.to_string_lossy().into_owned(),
                t.partition_columns,
            )
        })
        .collect())
}

async fn store_tables(url: &url::Url) -> std::result::Result<Vec<TableSource>, Error> {
    let fail = |message: String| Error::input(url.as_str(), None, message);
    let prefix = storage::published_prefix(url).await.map_err(fail)?;
    let tables = storage::find_tables(&prefix).await.map_err(fail)?;
    if tables.is_empty() {
        return Err(fail(
            "no Parquet tables here; run `adlens preprocess` first".into(),
        ));
    }
    Ok(tables
        .into_iter()
        .map(|t| (t.name, t.url.to_string(), t.partition_columns))
        .collect())
}

/// A local session over `data`: [`session`] with [`register_tables`].
pub async fn open_data(data: &Path) -> std::result::Result<SessionContext, Error> {
    let ctx = session(&EngineConfig::default()).map_err(|e| Error::Query(e.to_string()))?;
    register_tables(&ctx, &Location::Local(data.to_path_buf())).await?;
    Ok(ctx)
}

/// Plans and runs every `;`-separated statement of `sql` in order, returning
/// the DataFrame of each (DDL statements run as they are planned).
pub async fn run_statements(ctx: &SessionContext, sql: &str) -> Result<Vec<DataFrame>> {
    run_checked_statements(ctx, sql, |_| Ok(())).await
}

/// [`run_statements`], with `check` called on each statement's plan before
/// it runs (an error stops the script there).
pub async fn run_checked_statements(
    ctx: &SessionContext,
    sql: &str,
    check: impl Fn(&LogicalPlan) -> Result<()>,
) -> Result<Vec<DataFrame>> {
    let mut frames = Vec::new();
    for statement in DFParser::parse_sql(sql)? {
        let plan = ctx.state().statement_to_plan(statement).await?;
        check(&plan)?;
        frames.push(ctx.execute_logical_plan(plan).await?);
    }
    Ok(frames)
}

/// SHA-256 of the SQL that shapes the output, so a manifest tells which
/// rules made a data set.
pub fn sql_hash() -> String {
    format!("{:x}", Sha256::digest(PREPROCESS_SQL.as_bytes()))
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
