//! The duplicate pass of `preprocess`: among the written campaigns, every id
//! keeps one row (the newest `created_at`; ties go to the first input, then
//! the first line) and the others are removed from their Parquet files.
//!
//! Why not SQL: ranking all rows by id in DataFusion needs either a hash join
//! (which cannot spill: it failed at 33M rows) or an external sort of every
//! row. Instead this pass is bounded by design. It reads back only the four
//! key columns, and splits the ids by hash into as many passes as the memory
//! budget needs: one pass holds `rows / passes` keys of [`KEY_BYTES`] each, so
//! memory stays at the budget whatever the input size, and the extra cost of a
//! pass is one more read of four narrow columns. Within a pass the keys are
//! sorted (in parallel) and each run of equal ids yields its losers. The only
//! other memory is 8 bytes per dropped duplicate (its file and row).
//!
//! Which rows it reads: the cleaning pass writes a row in its final form
//! (zstd, bloom filter) unless [`crate::id_scan`] found its id more than once
//! in the inputs; those rows are staged (LZ4, no bloom filter;
//! [`SinkOptions::staging`]) under [`STAGED_PREFIX`]. Only the staged keys are
//! compared, and the staged files are rewritten without their losers into
//! final ones ([`REPEATED_PREFIX`]), so the bulk of the rows is compressed
//! once and never read back. Staging every row and rewriting it all was 27%
//! of a 3M-row run for 0.14% of its rows dropped; rewriting only the files
//! holding losers did not help then, as duplicates spread over every file.
//! When the inputs could not be scanned (a pipe, `.gz`, an object store)
//! every row is staged; when the final files' ids turn out not to be
//! distinct (a scan that missed an id), every file's keys are compared and
//! final files holding losers are rewritten in place.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, RecordBatchReader};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::errors::ParquetError;
use rayon::prelude::*;

use crate::writer::{ParquetSink, SinkOptions};

type Result<T> = std::result::Result<T, ParquetError>;

/// Bytes one key takes in memory during a pass.
pub const KEY_BYTES: usize = std::mem::size_of::<Key>();

/// The columns the rule reads.
const KEY_COLUMNS: [&str; 4] = ["campaign_id", "created_at", "source_input", "source_line"];

/// One kept row, as the duplicate rule sees it.
#[derive(Debug, Clone, Copy)]
struct Key {
    id: i64,
    created_at: i64,
    line: i64,
    input: i32,
    file: u32,
    row: u32,
}

impl Key {
    /// Sort order: by id, then the winner first (newest, first input, first line).
    fn order(&self) -> (i64, std::cmp::Reverse<i64>, i32, i64) {
        (
            self.id,
            std::cmp::Reverse(self.created_at),
            self.input,
            self.line,
        )
    }
}

/// What the pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DedupStats {
    /// Rows removed as losing duplicates.
    pub dropped: u64,
    /// Rows in the files after the pass, as written.
    pub rows: u64,
    /// Passes over the key columns (ids split by hash).
    pub passes: u64,
    /// Files rewritten.
    pub files_rewritten: u64,
}

/// Name prefix of the files the cleaning pass stages for this pass.
pub const STAGED_PREFIX: &str = "staged-";
/// Name prefix of the files this pass writes from the staged ones
/// (`repeated-00-0000.parquet`).
pub const REPEATED_PREFIX: &str = "repeated";

/// Drops losing duplicates from the Parquet files under `dir` (searched
/// recursively), holding at most `budget` bytes of keys at a time.
///
/// Staged files ([`STAGED_PREFIX`]) are always rewritten with `sink`'s
/// final settings, a directory's merged into few files ([`rewrites`]).
/// When the cleaning pass vouches that the final files' ids are distinct
/// and none is staged (`finals_distinct`), only the staged rows are
/// compared; otherwise every file is, and final files holding losers are
/// rewritten in place.
pub fn drop_duplicates(
    dir: &Path,
    budget: usize,
    sink: &SinkOptions,
    finals_distinct: bool,
) -> Result<DedupStats> {
    // Stable order: the file numbers of the losers index `keyed`.
    let files = crate::layout::parquet_files(dir)?;
    let (keyed, untouched): (Vec<PathBuf>, Vec<PathBuf>) = files
        .into_iter()
        .partition(|f| is_staged(f) || !finals_distinct);
    let rows: Vec<u64> = keyed.iter().map(|f| file_rows(f)).collect::<Result<_>>()?;
    let total: u64 = rows.iter().sum();
    let passes = passes_for(total, budget);
    let mut losers = Vec::new();
    // Room for one pass's share of the keys, plus slack for an uneven hash.
    let capacity = (total / passes + total / passes / 20 + 1024) as usize;
    for pass in 0..passes {
        let mut keys = read_keys(&keyed, pass, passes, capacity)?;
        keys.par_sort_unstable_by_key(Key::order);
        collect_losers(&keys, &mut losers);
    }
    losers.par_sort_unstable();
    let by_file = losers_by_file(rows.len(), &losers);
    let (jobs, left_rows) = rewrites(keyed, by_file, &rows, sink.max_rows_per_file as u64);
    let files_rewritten = jobs.iter().map(Rewrite::inputs).sum::<usize>() as u64;
    let written: Vec<u64> = jobs
        .into_par_iter()
        .map(|job| job.run(sink))
        .collect::<Result<_>>()?;
    let kept_as_is = untouched
        .iter()
        .map(|f| file_rows(f))
        .sum::<Result<u64>>()?
        + left_rows;
    Ok(DedupStats {
        dropped: losers.len() as u64,
        // Counted from what was written and what was left, not derived
        // from the losers.
        rows: written.iter().sum::<u64>() + kept_as_is,
        passes,
        files_rewritten,
    })
}

/// Passes needed so one pass's keys fit in `budget` bytes.
pub fn passes_for(rows: u64, budget: usize) -> u64 {
    let need = rows.saturating_mul(KEY_BYTES as u64);
    need.div_ceil(budget.max(KEY_BYTES) as u64).max(1)
}

/// The pass an id belongs to: a multiplicative hash, so sequential ids spread evenly.
fn pass_of(id: i64, passes: u64) -> u64 {
    ((id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % passes
}

fn file_rows(path: &Path) -> Result<u64> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?;
    Ok(builder.metadata().file_metadata().num_rows() as u64)
}

/// The keys of the ids that fall in `pass`, from every file. Files are read
/// in parallel a few at a time and appended to one vector, so the keys are
/// held once (not once per file and again concatenated).
fn read_keys(files: &[PathBuf], pass: u64, passes: u64, capacity: usize) -> Result<Vec<Key>> {
    let mut keys = Vec::with_capacity(capacity);
    let at_once = rayon::current_num_threads().max(1);
    for (chunk_no, chunk) in files.chunks(at_once).enumerate() {
        let parts: Vec<Vec<Key>> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, path)| file_keys(path, (chunk_no * at_once + i) as u32, pass, passes))
            .collect::<Result<_>>()?;
        for part in parts {
            keys.extend(part);
        }
    }
    Ok(keys)
}

fn file_keys(path: &Path, file: u32, pass: u64, passes: u64) -> Result<Vec<Key>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), KEY_COLUMNS);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65_536)
        .build()?;
    let mut keys = Vec::new();
    let mut row = 0u32;
    for batch in reader {
        let batch = batch?;
        let ids = column(&batch, "campaign_id")?.as_primitive::<Int64Type>();
        let times = column(&batch, "created_at")?.as_primitive::<TimestampMicrosecondType>();
        let inputs = column(&batch, "source_input")?.as_primitive::<Int32Type>();
        let lines = column(&batch, "source_line")?.as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            let id = ids.value(i);
            if passes == 1 || pass_of(id, passes) == pass {
                keys.push(Key {
                    id,
                    created_at: times.value(i),
                    line: lines.value(i),
                    input: inputs.value(i),
                    file,
                    row: row + i as u32,
                });
            }
        }
        row += batch.num_rows() as u32;
    }
    Ok(keys)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Arc<dyn Array>> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ParquetError::General(format!("no column `{name}` in the campaigns")))
}

/// Appends `(file << 32) | row` of every key but the first of each id.
fn collect_losers(sorted: &[Key], losers: &mut Vec<u64>) {
    for pair in sorted.windows(2) {
        if pair[0].id == pair[1].id {
            losers.push((u64::from(pair[1].file) << 32) | u64::from(pair[1].row));
        }
    }
}

/// Sorted packed losers as each file's rows to drop, in increasing order
/// (empty for a file without losers: it is rewritten all the same).
fn losers_by_file(files: usize, losers: &[u64]) -> Vec<Vec<u32>> {
    let mut by_file = vec![Vec::new(); files];
    for packed in losers {
        by_file[(packed >> 32) as usize].push(*packed as u32);
    }
    by_file
}

fn is_staged(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with(STAGED_PREFIX))
}

/// A staged file and its losers.
type Staged = (PathBuf, Vec<u32>);

/// One rewrite of the duplicate pass.
enum Rewrite {
    /// A final file holding losers, rewritten in place without them.
    InPlace { file: PathBuf, drop: Vec<u32> },
    /// Staged files of one directory, without their losers, merged into
    /// final files named `prefix-NNNN`: one staged file per partition would
    /// leave many small files behind.
    Merge {
        dir: PathBuf,
        prefix: String,
        files: Vec<Staged>,
    },
}

impl Rewrite {
    /// Files it reads.
    fn inputs(&self) -> usize {
        match self {
            Rewrite::InPlace { .. } => 1,
            Rewrite::Merge { files, .. } => files.len(),
        }
    }

    /// Does it; returns the rows written.
    fn run(self, sink: &SinkOptions) -> Result<u64> {
        match self {
            Rewrite::InPlace { file, drop } => rewrite_without(&file, &drop, sink),
            Rewrite::Merge { dir, prefix, files } => merge_staged(&dir, &prefix, &files, sink),
        }
    }
}

/// The rewrites of the `keyed` files given each one's losers and rows, and
/// the rows of the final files among them that hold none (left as they
/// are). A directory's staged files are merged in groups of at most
/// `max_rows`, so when every row was staged the rewrites still spread over
/// the cores.
fn rewrites(
    keyed: Vec<PathBuf>,
    by_file: Vec<Vec<u32>>,
    rows: &[u64],
    max_rows: u64,
) -> (Vec<Rewrite>, u64) {
    let (mut jobs, mut left_rows) = (Vec::new(), 0);
    // Per directory: its groups, and the rows of the last one.
    let mut merges: BTreeMap<PathBuf, (Vec<Vec<Staged>>, u64)> = BTreeMap::new();
    for ((file, drop), &rows) in keyed.into_iter().zip(by_file).zip(rows) {
        if !is_staged(&file) {
            if drop.is_empty() {
                left_rows += rows;
            } else {
                jobs.push(Rewrite::InPlace { file, drop });
            }
            continue;
        }
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let (groups, last_rows) = merges.entry(dir).or_default();
        if groups.is_empty() || *last_rows + rows > max_rows {
            groups.push(Vec::new());
            *last_rows = 0;
        }
        *last_rows += rows;
        groups.last_mut().expect("pushed above").push((file, drop));
    }
    for (dir, (groups, _)) in merges {
        for (i, files) in groups.into_iter().enumerate() {
            jobs.push(Rewrite::Merge {
                dir: dir.clone(),
                prefix: format!("{REPEATED_PREFIX}-{i:02}"),
                files,
            });
        }
    }
    (jobs, left_rows)
}

/// A reader over the batches of `path`.
fn batches(path: &Path) -> Result<ParquetRecordBatchReader> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?
        .with_batch_size(8192)
        .build()
}

/// Hands `out` the batches of `reader` without the rows in `drop` (sorted);
/// returns the rows kept.
fn for_each_kept(
    reader: ParquetRecordBatchReader,
    drop: &[u32],
    mut out: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<u64> {
    let (mut start, mut next, mut kept) = (0u32, 0usize, 0u64);
    for batch in reader {
        let batch = batch?;
        let end = start + batch.num_rows() as u32;
        let keep: BooleanArray = (start..end)
            .map(|row| {
                let dropped = drop.get(next) == Some(&row);
                next += usize::from(dropped);
                Some(!dropped)
            })
            .collect();
        let batch = filter_record_batch(&batch, &keep)?;
        kept += batch.num_rows() as u64;
        out(&batch)?;
        start = end;
    }
    Ok(kept)
}

/// Rewrites `path` without the rows in `drop` (sorted), under a hidden name
/// renamed over it; returns the rows kept.
fn rewrite_without(path: &Path, drop: &[u32], sink: &SinkOptions) -> Result<u64> {
    let reader = batches(path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let writing = path.with_file_name(format!(".{name}.dedup"));
    let out = BufWriter::with_capacity(1 << 20, File::create(&writing)?);
    let mut writer = ArrowWriter::try_new(out, reader.schema(), Some(sink.properties()?))?;
    let kept = for_each_kept(reader, drop, |batch| writer.write(batch))?;
    let out = writer.into_inner()?;
    out.into_inner()
        .map_err(|e| ParquetError::External(Box::new(e.into_error())))?
        .sync_all()?;
    fs::rename(&writing, path)?;
    Ok(kept)
}

/// Writes the staged `files` of `dir` without their losers as final files
/// ([`REPEATED_PREFIX`]), then removes them; returns the rows written.
fn merge_staged(dir: &Path, prefix: &str, files: &[Staged], sink: &SinkOptions) -> Result<u64> {
    let mut out: Option<ParquetSink> = None;
    for (file, drop) in files {
        let reader = batches(file)?;
        let out = match &mut out {
            Some(out) => out,
            None => out.insert(ParquetSink::new(
                dir,
                prefix,
                reader.schema(),
                &[],
                sink.clone(),
            )?),
        };
        for_each_kept(reader, drop, |batch| out.write(batch))?;
    }
    let rows = out.map_or(Ok(0), ParquetSink::finish)?;
    for (file, _) in files {
        fs::remove_file(file)?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_grow_with_rows_over_budget() {
        assert_eq!(passes_for(0, 1 << 20), 1);
        assert_eq!(passes_for(1000, 1 << 30), 1);
        let rows = (1u64 << 20) / KEY_BYTES as u64;
        assert_eq!(passes_for(rows, 1 << 20), 1);
        assert_eq!(passes_for(rows + 1, 1 << 20), 2);
        assert_eq!(passes_for(10 * rows, 1 << 20), 10);
    }

    #[test]
    fn every_id_lands_in_exactly_one_pass_and_passes_are_balanced() {
        let mut sizes = [0u32; 7];
        for id in 1_700_000_000..1_700_070_000i64 {
            sizes[pass_of(id, 7) as usize] += 1;
        }
        assert!(
            sizes.iter().all(|&n| (9000..11000).contains(&n)),
            "{sizes:?}"
        );
    }

    #[test]
    fn the_newest_then_first_input_then_first_line_wins() {
        let key = |id, created_at, input, line, row| Key {
            id,
            created_at,
            line,
            input,
            file: 0,
            row,
        };
        let mut keys = vec![
            key(7, 10, 0, 5, 0),
            key(7, 20, 1, 9, 1), // newest: wins
            key(8, 10, 1, 1, 2),
            key(8, 10, 0, 7, 3), // same time, first input: wins
            key(9, 10, 0, 3, 4), // same time and input, first line: wins
            key(9, 10, 0, 4, 5),
            key(10, 1, 0, 1, 6), // alone
        ];
        keys.sort_unstable_by_key(Key::order);
        let mut losers = Vec::new();
        collect_losers(&keys, &mut losers);
        losers.sort_unstable();
        assert_eq!(losers, [0, 2, 5]);
        assert_eq!(
            losers_by_file(3, &[3, 5, (1 << 32) | 2]),
            [vec![3, 5], vec![2], vec![]]
        );
    }

    /// A row as the tests write it: id, created_at, line.
    type Row = (i64, i64, i64);

    /// Writes each file's rows (id, created_at, line) to its name under
    /// `dir`, as the cleaning pass would: staged files with the staging
    /// settings, the others with the final ones.
    fn write_files(dir: &Path, files: &[(&str, &[Row])]) {
        for (name, rows) in files {
            let sink = SinkOptions::default();
            let sink = if is_staged(Path::new(name)) {
                sink.staging()
            } else {
                sink
            };
            write(dir, name, rows, &sink);
        }
    }

    fn write(dir: &Path, name: &str, rows: &[Row], sink: &SinkOptions) {
        use arrow::array::{Int32Array, Int64Array, TimestampMicrosecondArray};
        use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
        let schema = Arc::new(Schema::new(vec![
            Field::new("campaign_id", DataType::Int64, false),
            Field::new(
                "created_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("source_input", DataType::Int32, false),
            Field::new("source_line", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.1),
                )),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|_| 0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ],
        )
        .unwrap();
        let file = File::create(dir.join(name)).unwrap();
        let mut writer =
            ArrowWriter::try_new(file, schema, Some(sink.properties().unwrap())).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// (file name, sorted lines) of every file under `dir`.
    fn lines_by_file(dir: &Path) -> Vec<(String, Vec<i64>)> {
        crate::layout::parquet_files(dir)
            .unwrap()
            .into_iter()
            .map(|path| {
                let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
                let mut lines = Vec::new();
                for batch in reader {
                    let batch = batch.unwrap();
                    let column = batch.column_by_name("source_line").unwrap();
                    lines.extend(column.as_primitive::<Int64Type>().values().iter());
                }
                lines.sort_unstable();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, lines)
            })
            .collect()
    }

    #[test]
    fn staged_files_are_merged_and_final_ones_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = SinkOptions::default();
        // Id 7: the newest (line 9) wins across two staged files.
        write_files(
            tmp.path(),
            &[
                ("part-00-0000.parquet", &[(1, 5, 2), (2, 5, 3)]),
                ("staged-part-00-0000.parquet", &[(7, 5, 4), (8, 5, 5)]),
                ("staged-part-01-0000.parquet", &[(7, 6, 9), (8, 5, 6)]),
            ],
        );
        let before = fs::metadata(tmp.path().join("part-00-0000.parquet")).unwrap();
        let stats = drop_duplicates(tmp.path(), 1 << 20, &sink, true).unwrap();
        assert_eq!(
            (stats.dropped, stats.rows, stats.files_rewritten),
            (2, 4, 2)
        );
        assert_eq!(
            lines_by_file(tmp.path()),
            [
                ("part-00-0000.parquet".to_string(), vec![2, 3]),
                ("repeated-00-0000.parquet".to_string(), vec![5, 9]),
            ]
        );
        let after = fs::metadata(tmp.path().join("part-00-0000.parquet")).unwrap();
        assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    }

    /// When the final files' ids are not distinct (an id the scan missed),
    /// every file's keys are compared and a final file holding a loser is
    /// rewritten in place.
    #[test]
    fn final_files_with_a_missed_duplicate_are_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let sink = SinkOptions::default();
        write_files(
            tmp.path(),
            &[
                ("part-00-0000.parquet", &[(1, 5, 2), (2, 5, 3)]),
                ("part-01-0000.parquet", &[(1, 6, 4), (3, 5, 5)]),
                ("part-02-0000.parquet", &[(4, 5, 6)]),
                ("staged-part-00-0000.parquet", &[(3, 4, 7)]),
            ],
        );
        let stats = drop_duplicates(tmp.path(), 1 << 20, &sink, false).unwrap();
        assert_eq!(
            (stats.dropped, stats.rows, stats.files_rewritten),
            (2, 4, 2)
        );
        assert_eq!(
            lines_by_file(tmp.path()),
            [
                ("part-00-0000.parquet".to_string(), vec![3]),
                ("part-01-0000.parquet".to_string(), vec![4, 5]),
                ("part-02-0000.parquet".to_string(), vec![6]),
            ]
        );
    }
}
