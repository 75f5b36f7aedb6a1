//! A Parquet sink that writes Hive-partitioned (`month=2023-05/`) or flat
//! directories of zstd Parquet files, one file set per writer, so that several
//! writers (one per DataFusion partition) can fill one directory in parallel.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

type Result<T> = std::result::Result<T, parquet::errors::ParquetError>;

/// How the sink lays out and encodes its files.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Rows per row group.
    pub row_group_rows: usize,
    /// A file is closed and the next one started past this many rows.
    pub max_rows_per_file: usize,
    /// Columns that get a Parquet bloom filter (point look-ups by id).
    pub bloom_columns: Vec<String>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 262_144,
            max_rows_per_file: 2_000_000,
            bloom_columns: Vec::new(),
        }
    }
}

impl SinkOptions {
    fn properties(&self) -> Result<WriterProperties> {
        let mut builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_created_by(format!("adlens {}", env!("CARGO_PKG_VERSION")));
        for column in &self.bloom_columns {
            let path = ColumnPath::from(column.as_str());
            builder = builder
                .set_column_bloom_filter_enabled(path.clone(), true)
                .set_column_bloom_filter_max_ndv(path, self.row_group_rows as u64);
        }
        Ok(builder.build())
    }
}

struct OpenFile {
    writer: ArrowWriter<BufWriter<File>>,
    rows: usize,
}

/// Writes batches under `root`, split by the values of `partition_column`
/// (dropped from the files, kept in the directory names) when there is one.
pub struct ParquetSink {
    root: PathBuf,
    prefix: String,
    partition_column: Option<String>,
    file_schema: SchemaRef,
    options: SinkOptions,
    properties: WriterProperties,
    open: BTreeMap<String, OpenFile>,
    next_seq: BTreeMap<String, usize>,
    rows: u64,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("root", &self.root)
            .field("rows", &self.rows)
            .finish()
    }
}

impl ParquetSink {
    /// A sink whose files hold `file_schema` (incoming batches are cast to it
    /// by column name), named `{prefix}-{seq}.parquet`.
    pub fn new(
        root: &Path,
        prefix: &str,
        file_schema: SchemaRef,
        partition_column: Option<&str>,
        options: SinkOptions,
    ) -> Result<Self> {
        fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            prefix: prefix.to_string(),
            partition_column: partition_column.map(str::to_string),
            file_schema,
            properties: options.properties()?,
            options,
            open: BTreeMap::new(),
            next_seq: BTreeMap::new(),
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends a batch, routing each row to its partition.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let Some(column) = self.partition_column.clone() else {
            return self.write_to(String::new(), batch);
        };
        let values = partition_values(batch, &column)?;
        let distinct: std::collections::BTreeSet<&str> = values.iter().flatten().collect();
        if values.null_count() > 0 {
            return Err(ArrowError::InvalidArgumentError(format!(
                "NULL in partition column `{column}`"
            ))
            .into());
        }
        if distinct.len() == 1 {
            let key = distinct.into_iter().next().unwrap_or_default().to_string();
            return self.write_to(key, batch);
        }
        for key in distinct {
            let mask = eq(&values, &StringArray::new_scalar(key))?;
            self.write_to(key.to_string(), &filter_record_batch(batch, &mask)?)?;
        }
        Ok(())
    }

    fn write_to(&mut self, key: String, batch: &RecordBatch) -> Result<()> {
        let projected = self.conform(batch)?;
        if !self.open.contains_key(&key) {
            let file = self.open_file(&key)?;
            self.open.insert(key.clone(), file);
        }
        let file = self.open.get_mut(&key).expect("opened above");
        file.writer.write(&projected)?;
        file.rows += projected.num_rows();
        self.rows += projected.num_rows() as u64;
        if file.rows >= self.options.max_rows_per_file
            && let Some(done) = self.open.remove(&key)
        {
            done.writer.close()?;
        }
        Ok(())
    }

    /// The batch with exactly the file schema's columns, cast where the
    /// engine handed over another string flavour (e.g. `Utf8View`).
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let columns = self
            .file_schema
            .fields()
            .iter()
            .map(|field| {
                let column = batch.column_by_name(field.name()).ok_or_else(|| {
                    ArrowError::SchemaError(format!("batch has no column `{}`", field.name()))
                })?;
                if column.data_type() == field.data_type() {
                    Ok(Arc::clone(column))
                } else {
                    cast(column, field.data_type())
                }
            })
            .collect::<std::result::Result<Vec<ArrayRef>, ArrowError>>()?;
        Ok(RecordBatch::try_new(
            Arc::clone(&self.file_schema),
            columns,
        )?)
    }

    fn open_file(&mut self, key: &str) -> Result<OpenFile> {
        let dir = match &self.partition_column {
            Some(column) => self.root.join(format!("{column}={key}")),
            None => self.root.clone(),
        };
        fs::create_dir_all(&dir)?;
        let seq = self.next_seq.entry(key.to_string()).or_default();
        let path = dir.join(format!("{}-{:04}.parquet", self.prefix, seq));
        *seq += 1;
        let out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        let writer = ArrowWriter::try_new(
            out,
            Arc::clone(&self.file_schema),
            Some(self.properties.clone()),
        )?;
        Ok(OpenFile { writer, rows: 0 })
    }

    /// Closes every open file; returns the rows written.
    pub fn finish(mut self) -> Result<u64> {
        for (_, file) in std::mem::take(&mut self.open) {
            file.writer.close()?;
        }
        Ok(self.rows)
    }
}

fn partition_values(batch: &RecordBatch, column: &str) -> Result<StringArray> {
    let array = batch.column_by_name(column).ok_or_else(|| {
        ArrowError::SchemaError(format!("batch has no partition column `{column}`"))
    })?;
    let utf8 = cast(array, &arrow::datatypes::DataType::Utf8)?;
    Ok(utf8
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .expect("cast to Utf8"))
}
