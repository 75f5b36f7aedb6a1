//! `adlens sql`: SQL over every Parquet output under a data directory, from
//! `-c`, `-f` or an interactive prompt with history. Results go to stdout as
//! a table, CSV or JSON lines; row counts and errors go to stderr.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;

use crate::cli::{Format, SqlArgs};
use crate::distributed;
use crate::engine::{self, EngineConfig};
use crate::error::Error;
use crate::storage::Location;

pub async fn run(args: &SqlArgs) -> anyhow::Result<()> {
    let ctx = match &args.cluster {
        Some(url) => distributed::client(url, &EngineConfig::default()).await?,
        None => engine::session(&EngineConfig::default())?,
    };
    engine::register_tables(&ctx, &args.data).await?;
    let guard = WriteGuard::new(&ctx, &args.data, args.allow_writes);
    let mut scripts: Vec<String> = args.commands.clone();
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::input(
                file.display().to_string(),
                None,
                crate::ingest::io_message(&e),
            )
        })?;
        scripts.push(text);
    }
    if scripts.is_empty() {
        return interactive(&ctx, args.format, &guard).await;
    }
    for sql in scripts {
        execute(&ctx, &sql, args.format, &guard).await?;
    }
    Ok(())
}

/// What exploration may not change without `--allow-writes`: the tables of
/// the data directory (INSERT, DELETE, UPDATE, DROP) and any path inside it
/// (`COPY ... TO`). Writing elsewhere and session-only tables stay allowed,
/// as in datafusion-cli.
#[derive(Debug)]
pub struct WriteGuard {
    managed: Vec<String>,
    data: Option<std::path::PathBuf>,
    /// The data prefix when it is in an object store.
    data_url: Option<String>,
    allow: bool,
}

impl WriteGuard {
    pub fn new(ctx: &SessionContext, data: &Location, allow: bool) -> Self {
        let managed = ctx
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        let (local, store) = match data {
            Location::Local(dir) => (std::fs::canonicalize(dir).ok(), None),
            Location::Store(url) => (None, Some(url.to_string())),
        };
        Self {
            managed,
            data: local,
            data_url: store,
            allow,
        }
    }

    /// An error naming what the plan would change, if it is refused.
    fn check(&self, plan: &LogicalPlan) -> datafusion::error::Result<()> {
        if self.allow {
            return Ok(());
        }
        let refuse = |what: String| {
            Err(datafusion::error::DataFusionError::Plan(format!(
                "{what} would change the managed outputs; `adlens sql` is read-only \
                 over the data directory unless `--allow-writes` is given"
            )))
        };
        match plan {
            LogicalPlan::Dml(dml) if self.is_managed(dml.table_name.table()) => {
                refuse(format!("{} on table `{}`", dml.op, dml.table_name))
            }
            LogicalPlan::Ddl(DdlStatement::DropTable(drop))
                if self.is_managed(drop.name.table()) =>
            {
                refuse(format!("DROP TABLE `{}`", drop.name))
            }
            LogicalPlan::Copy(copy) if self.inside_data(&copy.output_url) => {
                refuse(format!("COPY TO `{}`", copy.output_url))
            }
            _ => Ok(()),
        }
    }

    fn is_managed(&self, table: &str) -> bool {
        self.managed.iter().any(|t| t == table)
    }

    /// True when `url` is a local path inside the data directory (checked on
    /// the deepest existing ancestor, so `..` and symlinks cannot sneak in).
    fn inside_data(&self, url: &str) -> bool {
        if let Some(prefix) = &self.data_url {
            return url.starts_with(prefix.as_str()) || format!("{url}/") == *prefix;
        }
        let Some(data) = &self.data else {
            return false;
        };
        let path = url.strip_prefix("file://").unwrap_or(url);
        if path.contains("://") {
            return false;
        }
        let mut probe = std::path::absolute(path).unwrap_or_else(|_| Path::new(path).to_path_buf());
        loop {
            if let Ok(real) = std::fs::canonicalize(&probe) {
                return real.starts_with(data);
            }
            if !probe.pop() {
                return false;
            }
        }
    }
}

/// Runs every statement of `sql` and prints each result; stops at the first
/// statement `guard` refuses.
pub async fn execute(
    ctx: &SessionContext,
    sql: &str,
    format: Format,
    guard: &WriteGuard,
) -> anyhow::Result<()> {
    let frames = engine::run_checked_statements(ctx, sql, |plan| guard.check(plan))
        .await
        .map_err(|e| Error::Query(e.to_string()))?;
    for frame in frames {
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame
            .collect()
            .await
            .map_err(|e| Error::Query(e.to_string()))?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        print_batches(&schema, &batches, format)?;
        if format == Format::Table {
            eprintln!("({rows} row{})", if rows == 1 { "" } else { "s" });
        }
    }
    Ok(())
}

fn print_batches(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: Format,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => {
            if !schema.fields().is_empty() {
                writeln!(
                    out,
                    "{}",
                    arrow::util::pretty::pretty_format_batches_with_schema(
                        Arc::clone(schema),
                        batches
                    )?
                )?;
            }
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(stringify_schema(schema)))?;
            }
            for batch in batches {
                writer.write(&stringify_nested(batch)?)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

fn is_nested(data_type: &DataType) -> bool {
    data_type.is_nested()
}

fn stringify_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_nested(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// CSV has no lists or structs: such columns are printed as text (`[a, b]`).
fn stringify_nested(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default().with_null("");
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            if !is_nested(column.data_type()) {
                return Ok(Arc::clone(column));
            }
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let mut text = StringBuilder::new();
            for row in 0..column.len() {
                if column.is_null(row) {
                    text.append_null();
                } else {
                    text.append_value(formatter.value(row).to_string());
                }
            }
            Ok(Arc::new(text.finish()) as ArrayRef)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(
        stringify_schema(&batch.schema()),
        columns,
    )?)
}

/// A prompt with history in `~/.adlens_history`; statements end with `;`.
async fn interactive(
    ctx: &SessionContext,
    format: Format,
    guard: &WriteGuard,
) -> anyhow::Result<()> {
    let mut editor = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| Path::new(&h).join(".adlens_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!("adlens sql: end statements with `;`, `\\d` lists tables, `\\q` quits.");
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() {
            "adlens> "
        } else {
            "   ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        match line.trim() {
            "\\q" | "quit" | "exit" => break,
            "\\d" => pending = "SHOW TABLES;".into(),
            _ => {
                pending.push_str(&line);
                pending.push('\n');
            }
        }
        if pending.trim_end().ends_with(';') {
            let _ = editor.add_history_entry(pending.trim());
            if let Err(e) = execute(ctx, &pending, format, guard).await {
                eprintln!("error: {e:#}");
            }
            pending.clear();
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}
