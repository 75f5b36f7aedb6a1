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
//! Then every file is rewritten without its losers, row order unchanged,
//! under a hidden name renamed over the original: the cleaning pass writes
//! cheap staging files (LZ4, no bloom filter; [`SinkOptions::staging`]) and
//! this pass writes the only zstd copy with the final settings. Rewriting
//! only the files holding losers saved nothing in practice (duplicates
//! spread over every file) and cost a second zstd compression of each.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::errors::ParquetError;
use rayon::prelude::*;

use crate::writer::SinkOptions;

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

/// Drops losing duplicates from the Parquet files under `dir` (searched
/// recursively), holding at most `budget` bytes of keys at a time, and
/// rewrites every file with `sink`'s settings.
pub fn drop_duplicates(dir: &Path, budget: usize, sink: &SinkOptions) -> Result<DedupStats> {
    // Stable order: the file numbers of the losers index this list.
    let files = crate::layout::parquet_files(dir)?;
    let rows: Vec<u64> = files.iter().map(|f| file_rows(f)).collect::<Result<_>>()?;
    let total: u64 = rows.iter().sum();
    let passes = passes_for(total, budget);
    let mut losers = Vec::new();
    // Room for one pass's share of the keys, plus slack for an uneven hash.
    let capacity = (total / passes + total / passes / 20 + 1024) as usize;
    for pass in 0..passes {
        let mut keys = read_keys(&files, pass, passes, capacity)?;
        keys.par_sort_unstable_by_key(Key::order);
        collect_losers(&keys, &mut losers);
    }
    losers.par_sort_unstable();
    let by_file = losers_by_file(files.len(), &losers);
    let written: Vec<u64> = files
        .par_iter()
        .zip(&by_file)
        .map(|(file, drop)| rewrite_without(file, drop, sink))
        .collect::<Result<_>>()?;
    for ((before, drop), kept) in rows.iter().zip(&by_file).zip(&written) {
        debug_assert_eq!(before - drop.len() as u64, *kept);
    }
    Ok(DedupStats {
        dropped: losers.len() as u64,
        // Counted from what the rewrite wrote, not derived from the losers.
        rows: written.iter().sum(),
        passes,
        files_rewritten: files.len() as u64,
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

/// Rewrites `path` without the rows in `drop` (sorted); returns the rows kept.
fn rewrite_without(path: &Path, drop: &[u32], sink: &SinkOptions) -> Result<u64> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)?;
    let schema = Arc::clone(builder.schema());
    let reader = builder.with_batch_size(8192).build()?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let writing = path.with_file_name(format!(".{name}.dedup"));
    let out = BufWriter::with_capacity(1 << 20, File::create(&writing)?);
    let mut writer = ArrowWriter::try_new(out, schema, Some(sink.properties()?))?;
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
        writer.write(&batch)?;
        start = end;
    }
    let out = writer.into_inner()?;
    out.into_inner()
        .map_err(|e| ParquetError::External(Box::new(e.into_error())))?
        .sync_all()?;
    fs::rename(&writing, path)?;
    Ok(kept)
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
}
