//! A Parquet sink that writes Hive-partitioned (`month=2023-05/`,
//! `date=2026-11-22/hour=06/`) or flat directories of zstd Parquet files, one
//! file set per writer, so that several writers (one per DataFusion partition,
//! or one per stream process) can fill one directory in parallel.
//!
//! Files are written under a hidden `.NAME.inprogress` name and renamed into
//! place once complete and synced, so a reader (or a crash) never sees half a
//! file: whatever ends in `.parquet` is whole.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::kernels::boolean::{and, is_null};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
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
    /// Columns written without a dictionary: nearly every value is distinct
    /// (ids, times, titles, URLs), so a dictionary is built only to overflow and be
    /// dropped, and interning the values cost ~3% of `preprocess`.
    pub plain_columns: Vec<String>,
    /// Free-text columns (titles, URLs): without a dictionary, as
    /// [`Self::plain_columns`], and without min/max statistics. A page's
    /// smallest and largest title never rule it out of a query, and
    /// comparing every value to find them was ~1.5% of `preprocess`.
    pub free_text_columns: Vec<String>,
    /// Columns of mostly incompressible text (raw URLs full of tracking
    /// parameters and click ids): zstd level 1 instead of 3. Why: on the
    /// bench file's raw URLs level 3 compressed 255 MB/s to a ratio of
    /// 2.58, level 1 448 MB/s to 2.43 (`zstd -b`, 1 MiB blocks); on titles
    /// and descriptions the two levels run at the same speed, so only these
    /// columns trade 6% of their size for less than 60% of the time.
    pub fast_compression_columns: Vec<String>,
    /// Memory the sink's open files may hold in unfinished row groups; past
    /// it, the largest is written out early (a smaller row group). Without
    /// it, a writer per partition and month each buffering a whole row
    /// group made memory grow with the number of months.
    pub max_buffered_bytes: usize,
    /// A staging copy that another pass rewrites (see [`Self::staging`]):
    /// LZ4 pages instead of zstd.
    pub staging: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            row_group_rows: 262_144,
            max_rows_per_file: 2_000_000,
            bloom_columns: Vec::new(),
            plain_columns: Vec::new(),
            free_text_columns: Vec::new(),
            fast_compression_columns: Vec::new(),
            max_buffered_bytes: 128 << 20,
            staging: false,
        }
    }
}

impl SinkOptions {
    /// The same layout for files a later pass rewrites into their final
    /// form: compressing them with zstd would be work thrown away (zstd was
    /// a fifth of `preprocess` when campaigns were compressed twice).
    pub fn staging(&self) -> Self {
        Self {
            staging: true,
            bloom_columns: Vec::new(),
            ..self.clone()
        }
    }

    /// The writer settings every adlens Parquet file is written with.
    pub fn properties(&self) -> Result<WriterProperties> {
        let compression = if self.staging {
            Compression::LZ4_RAW
        } else {
            Compression::ZSTD(ZstdLevel::try_new(3)?)
        };
        let mut builder = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_created_by(format!("adlens {}", env!("CARGO_PKG_VERSION")));
        // A staging copy is read once: dictionaries would only cost time.
        builder = builder.set_dictionary_enabled(!self.staging);
        for column in self.plain_columns.iter().chain(&self.free_text_columns) {
            builder =
                builder.set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false);
        }
        for column in &self.free_text_columns {
            builder = builder.set_column_statistics_enabled(
                ColumnPath::from(column.as_str()),
                EnabledStatistics::None,
            );
        }
        if !self.staging {
            for column in &self.fast_compression_columns {
                builder = builder.set_column_compression(
                    ColumnPath::from(column.as_str()),
                    Compression::ZSTD(ZstdLevel::try_new(1)?),
                );
            }
        }
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
    /// Where the file is being written (hidden), and where it goes when done.
    writing: PathBuf,
    done: PathBuf,
}

impl OpenFile {
    /// Writes the footer, syncs the data and renames the file into place.
    fn close(mut self) -> Result<()> {
        self.writer.finish()?;
        self.writer.inner_mut().flush()?;
        self.writer.inner().get_ref().sync_all()?;
        fs::rename(&self.writing, &self.done)?;
        Ok(())
    }
}

/// Writes batches under `root`, split by the values of `partition_columns`
/// (outermost first; dropped from the files, kept in the directory names).
pub struct ParquetSink {
    root: PathBuf,
    prefix: String,
    partition_columns: Vec<String>,
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
        partition_columns: &[&str],
        options: SinkOptions,
    ) -> Result<Self> {
        fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            prefix: prefix.to_string(),
            partition_columns: partition_columns.iter().map(|c| c.to_string()).collect(),
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
        self.write_selected(batch, &BooleanArray::from(vec![true; batch.num_rows()]))
    }

    /// Appends the rows of `batch` that `selected` marks, routing each to its
    /// partition. Why one call: filtering the rows first and by partition
    /// after copied every value twice (~1.5% of `preprocess` in `perf`).
    pub fn write_selected(&mut self, batch: &RecordBatch, selected: &BooleanArray) -> Result<()> {
        if selected.true_count() == 0 {
            return Ok(());
        }
        if self.partition_columns.is_empty() {
            return self.write_to(String::new(), &filter_record_batch(batch, selected)?);
        }
        // One column (the usual `month`): its values route the rows and the
        // directory is named once per distinct value, not built per row.
        let (values, dir_of): (StringArray, fn(&str, &str) -> String) =
            match self.partition_columns.as_slice() {
                [column] => (partition_values(batch, column, selected)?, |c, v| {
                    format!("{c}={v}")
                }),
                columns => (partition_keys(batch, columns, selected)?, |_, key| {
                    key.to_string()
                }),
            };
        let column = self.partition_columns[0].clone();
        let distinct: std::collections::BTreeSet<&str> = values
            .iter()
            .zip(selected)
            .filter_map(|(value, selected)| value.filter(|_| selected == Some(true)))
            .collect();
        if distinct.len() == 1 {
            let value = distinct.into_iter().next().unwrap_or_default();
            return self.write_to(
                dir_of(&column, value),
                &filter_record_batch(batch, selected)?,
            );
        }
        for value in distinct {
            let mask = and(&eq(&values, &StringArray::new_scalar(value))?, selected)?;
            self.write_to(dir_of(&column, value), &filter_record_batch(batch, &mask)?)?;
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
            done.close()?;
        }
        self.bound_buffers()
    }

    /// Writes out the largest unfinished row group while the open files
    /// hold more than `max_buffered_bytes`.
    fn bound_buffers(&mut self) -> Result<()> {
        let buffered: usize = self.open.values().map(|f| f.writer.memory_size()).sum();
        if buffered > self.options.max_buffered_bytes
            && let Some(largest) = self
                .open
                .values_mut()
                .max_by_key(|f| f.writer.memory_size())
        {
            largest.writer.flush()?;
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
        // The key is already the relative directory (`month=2023-05`).
        let dir = self.root.join(key);
        fs::create_dir_all(&dir)?;
        let seq = self.next_seq.entry(key.to_string()).or_default();
        let name = format!("{}-{:04}.parquet", self.prefix, seq);
        *seq += 1;
        let writing = dir.join(format!(".{name}.inprogress"));
        let out = BufWriter::with_capacity(1 << 20, File::create(&writing)?);
        let writer = ArrowWriter::try_new(
            out,
            Arc::clone(&self.file_schema),
            Some(self.properties.clone()),
        )?;
        Ok(OpenFile {
            writer,
            rows: 0,
            writing,
            done: dir.join(name),
        })
    }

    /// Closes every open file, so everything written so far is in place
    /// (the stream's checkpoint); later rows go to new files.
    pub fn flush(&mut self) -> Result<()> {
        for (_, file) in std::mem::take(&mut self.open) {
            file.close()?;
        }
        Ok(())
    }

    /// Closes every open file; returns the rows written.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.rows)
    }
}

/// A partition column's values as text; a NULL cannot name a directory of
/// a `selected` row (the others are not written).
fn partition_values(
    batch: &RecordBatch,
    column: &str,
    selected: &BooleanArray,
) -> Result<StringArray> {
    let array = batch.column_by_name(column).ok_or_else(|| {
        ArrowError::SchemaError(format!("batch has no partition column `{column}`"))
    })?;
    let utf8 = cast(array, &arrow::datatypes::DataType::Utf8)?;
    if utf8.null_count() > 0 && and(&is_null(&utf8)?, selected)?.true_count() > 0 {
        return Err(ArrowError::InvalidArgumentError(format!(
            "NULL in partition column `{column}`"
        ))
        .into());
    }
    Ok(utf8.as_string::<i32>().clone())
}

/// Each row's partition directory, `a=x/b=y`, from several partition columns
/// (NULL for a row with a NULL value, which is not `selected`).
fn partition_keys(
    batch: &RecordBatch,
    columns: &[String],
    selected: &BooleanArray,
) -> Result<StringArray> {
    let values = columns
        .iter()
        .map(|column| partition_values(batch, column, selected))
        .collect::<Result<Vec<_>>>()?;
    let mut key = String::new();
    Ok((0..batch.num_rows())
        .map(|row| {
            if values.iter().any(|value| value.is_null(row)) {
                return None;
            }
            key.clear();
            for (i, (column, value)) in columns.iter().zip(&values).enumerate() {
                if i > 0 {
                    key.push('/');
                }
                key.push_str(column);
                key.push('=');
                key.push_str(value.value(row));
            }
            Some(key.clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    fn batch(ids: Vec<i64>, months: Vec<Option<&str>>) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("month", DataType::Utf8, true),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(months)),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    fn sink(root: &Path) -> ParquetSink {
        let file_schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        ParquetSink::new(
            root,
            "part",
            file_schema,
            &["month"],
            SinkOptions::default(),
        )
        .unwrap()
    }

    /// The ids written under `root/dir`, read back from its files.
    fn ids_in(root: &Path, dir: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        for file in crate::layout::parquet_files(&root.join(dir)).unwrap() {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(file).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let column = batch.column_by_name("id").unwrap();
                ids.extend(
                    column
                        .as_primitive::<arrow::datatypes::Int64Type>()
                        .values(),
                );
            }
        }
        ids
    }

    #[test]
    fn only_selected_rows_are_written_each_to_its_partition() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = sink(tmp.path());
        // The unselected row's NULL month names no directory and is no error.
        let rows = batch(
            vec![1, 2, 3, 4, 5],
            vec![
                Some("2023-01"),
                None,
                Some("2023-02"),
                Some("2023-01"),
                Some("2023-03"),
            ],
        );
        let selected = BooleanArray::from(vec![true, false, true, true, false]);
        sink.write_selected(&rows, &selected).unwrap();
        assert_eq!(sink.finish().unwrap(), 3);
        assert_eq!(ids_in(tmp.path(), "month=2023-01"), [1, 4]);
        assert_eq!(ids_in(tmp.path(), "month=2023-02"), [3]);
        assert!(!tmp.path().join("month=2023-03").exists());
    }

    #[test]
    fn a_selected_row_without_a_partition_value_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sink = sink(tmp.path());
        let rows = batch(vec![1, 2], vec![Some("2023-01"), None]);
        let err = sink
            .write_selected(&rows, &BooleanArray::from(vec![true, true]))
            .unwrap_err();
        assert!(
            err.to_string().contains("NULL in partition column `month`"),
            "{err}"
        );
    }

    #[test]
    fn raw_urls_alone_get_the_fast_zstd_level() {
        let options = SinkOptions {
            fast_compression_columns: vec!["raw_url".into()],
            ..SinkOptions::default()
        };
        let properties = options.properties().unwrap();
        let level = |column: &str| properties.compression(&ColumnPath::from(column));
        assert_eq!(
            level("raw_url"),
            Compression::ZSTD(ZstdLevel::try_new(1).unwrap())
        );
        assert_eq!(
            level("url"),
            Compression::ZSTD(ZstdLevel::try_new(3).unwrap())
        );
        let staging = options.staging().properties().unwrap();
        assert_eq!(
            staging.compression(&ColumnPath::from("raw_url")),
            Compression::LZ4_RAW
        );
    }
}
