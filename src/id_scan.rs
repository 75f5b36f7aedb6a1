//! A quick scan of the raw dumps, before the cleaning pass, for the ids that
//! occur more than once: only rows with those ids need the duplicate pass.
//!
//! Why: the duplicate pass used to stage every campaign row and rewrite it
//! all (read back, filter, compress with zstd again): 27% of a 3M-row run,
//! for a rule that drops 0.14% of the rows. Knowing the repeated ids up
//! front, the cleaning pass writes every other row once, in its final form,
//! and stages only the few rows whose id repeats.
//!
//! The scan does not parse the CSV: every record starts at the beginning of
//! the file or right after a `\r` or `\n` (the reader resumes on the next line
//! after a broken record), so reading the first two fields after each line
//! break, the way `csv_core` unquotes them, sees every record's id, plus the
//! odd bogus one from a quoted line break (harmless: it can only make a row
//! staged that need not be). That makes it a byte scan the cores split by
//! file range. It is a speed-up, not the rule: the cleaning pass checks that
//! the rows it wrote unstaged have distinct ids, and the duplicate pass reads
//! every file if they do not ([`crate::dedup`]).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::csv_records::MAX_FIELD_BYTES;

/// A line is read this much at a time: a longer one is taken in pieces,
/// each read as if it started a line (memory stays bounded on a dump
/// without line breaks; a record cut there is left to the safety net).
const MAX_PIECE: u64 = 4 << 20;
/// Records with an open quoted id followed at once, and how far each: an
/// id field longer than a field may be is rejected anyway. Past these
/// bounds a record is given up (left to the safety net), so hostile input
/// cannot make the scan hold much.
const MAX_OPEN: usize = 8;
const MAX_OPEN_BYTES: usize = 2 * MAX_FIELD_BYTES;

/// Which kept rows the cleaning pass stages for the duplicate pass.
#[derive(Debug, Clone)]
pub enum Staging {
    /// Every row: the inputs could not be scanned (a pipe, `.gz`, a remote
    /// store, or more ids than the memory limit holds).
    All,
    /// Only rows whose id occurs more than once in the inputs.
    Repeated(foldhash::HashSet<i64>),
}

impl Staging {
    /// Whether a kept row with this id goes to the duplicate pass.
    pub fn stages(&self, id: i64) -> bool {
        match self {
            Staging::All => true,
            Staging::Repeated(ids) => ids.contains(&id),
        }
    }
}

/// Scans `files` (local, uncompressed) for repeated ids, holding at most
/// `max_ids` ids; past that it gives up and every row is staged.
pub fn scan(files: &[PathBuf], max_ids: usize) -> io::Result<Staging> {
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()))
        .sum::<io::Result<_>>()?;
    // Small inputs are not worth a split; big ones get a range per core.
    let parts = if bytes < 8 << 20 {
        1
    } else {
        rayon::current_num_threads().max(1) as u64
    };
    let Some(mut ids) = ids(files, parts, max_ids)? else {
        return Ok(Staging::All);
    };
    ids.par_sort_unstable();
    let mut repeated = foldhash::HashSet::default();
    repeated.extend(
        ids.windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0]),
    );
    Ok(Staging::Repeated(repeated))
}

/// The id of every line of `files` (unsorted), each file read as `parts`
/// ranges in parallel; `None` once more than `max_ids` are held.
pub fn ids(files: &[PathBuf], parts: u64, max_ids: usize) -> io::Result<Option<Vec<i64>>> {
    let mut ranges = Vec::new();
    for path in files {
        let len = std::fs::metadata(path)?.len();
        let parts = parts.max(1);
        ranges.extend((0..parts).map(|i| (path.as_path(), len * i / parts, len * (i + 1) / parts)));
    }
    let held = AtomicUsize::new(0);
    let found: Vec<Option<Vec<i64>>> = ranges
        .par_iter()
        .map(|&(path, start, end)| {
            range_ids(path, start, end, &held, max_ids)
                .map_err(|e| io::Error::new(e.kind(), format!("`{}`: {e}", path.display())))
        })
        .collect::<io::Result<_>>()?;
    Ok(found
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .map(|parts| parts.concat()))
}

/// The ids of the records starting on the lines that start in `start..end`
/// of `path` (a line that starts before `end` is read to its end, and past
/// it while a quoted id is open), or `None` once more than `max_ids` are held
/// across all ranges.
fn range_ids(
    path: &Path,
    start: u64,
    end: u64,
    held: &AtomicUsize,
    max_ids: usize,
) -> io::Result<Option<Vec<i64>>> {
    let mut file = File::open(path)?;
    let mut pos = start.saturating_sub(1);
    file.seek(SeekFrom::Start(pos))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    if start > 0 {
        // The line holding `start - 1` belongs to the range before, unless
        // that byte is its line break: then this range starts on a new line.
        pos += reader.skip_until(b'\n')? as u64;
    }
    let mut lines = Lines {
        reader,
        spill: Vec::new(),
    };
    let (mut ids, mut counted) = (Vec::new(), 0);
    // Records whose quoted id runs past their line, with their text so far.
    let mut open: Vec<Vec<u8>> = Vec::new();
    while pos < end || !open.is_empty() {
        // Lines that start past the range are read only for its open records.
        let in_range = pos < end;
        let Some(read) = lines.next_with(|line| {
            take_line(line, in_range, &mut ids, &mut open);
            line.len()
        })?
        else {
            // At the end of the input an open quote leaves the record short
            // of fields: rejected, no id.
            break;
        };
        pos += read as u64;
        // Checked in steps, so the ranges do not contend on every line.
        if ids.len() - counted >= 1 << 16 || pos >= end {
            let new = ids.len() - counted;
            counted = ids.len();
            if held.fetch_add(new, Ordering::Relaxed) + new > max_ids {
                return Ok(None);
            }
        }
    }
    Ok(Some(ids))
}

/// The ids of the records `line` ends (those open before it) and, when it
/// starts in the range, of those it starts.
fn take_line(line: &[u8], in_range: bool, ids: &mut Vec<i64>, open: &mut Vec<Vec<u8>>) {
    open.retain_mut(|text| {
        text.extend_from_slice(line);
        match record_start(text) {
            Start::Id(id) => ids.push(id),
            Start::NoId => {}
            Start::Open => return text.len() <= MAX_OPEN_BYTES,
        }
        false
    });
    if !in_range {
        return;
    }
    // Every record starts at the beginning of a line or after a `\r`.
    let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\r', line).map(|i| i + 1));
    for at in starts.filter(|&at| at < line.len()) {
        match record_start(&line[at..]) {
            Start::Id(id) => ids.push(id),
            Start::NoId => {}
            Start::Open if open.len() < MAX_OPEN => open.push(line[at..].to_vec()),
            Start::Open => {}
        }
    }
}

/// A file's lines (each with its `\n`), at most [`MAX_PIECE`] bytes each,
/// lent straight from the read buffer when they lie whole in it: no copy
/// per line, and the line break found by the `memchr` crate's vectorised
/// search (`BufRead::read_until` copied every line and searched with the
/// standard library's, 15% of the scan).
struct Lines<R> {
    reader: BufReader<R>,
    /// A line that straddles two fills of the buffer, gathered.
    spill: Vec<u8>,
}

impl<R: Read> Lines<R> {
    /// `f` of the next line, or `None` at the end of the input.
    fn next_with<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> io::Result<Option<T>> {
        self.spill.clear();
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok((!self.spill.is_empty()).then(|| f(&self.spill)));
            }
            let room = MAX_PIECE as usize - self.spill.len();
            let window = &buf[..buf.len().min(room)];
            let Some(at) = memchr::memchr(b'\n', window) else {
                let taken = window.len();
                self.spill.extend_from_slice(window);
                self.reader.consume(taken);
                if self.spill.len() >= MAX_PIECE as usize {
                    return Ok(Some(f(&self.spill)));
                }
                continue;
            };
            let out = if self.spill.is_empty() {
                f(&window[..=at])
            } else {
                self.spill.extend_from_slice(&window[..=at]);
                f(&self.spill)
            };
            self.reader.consume(at + 1);
            return Ok(Some(out));
        }
    }
}

/// What the start of a record says about its id.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    Id(i64),
    NoId,
    /// The id is quoted and its quote still open: more lines are needed.
    Open,
}

/// The id a record starting with `text` would get from the cleaning SQL
/// (`try_cast(trim(id) AS BIGINT)`, kept only when positive), if `text`
/// holds the whole id.
pub fn record_id(text: &[u8]) -> Option<i64> {
    match record_start(text) {
        Start::Id(id) => Some(id),
        Start::NoId | Start::Open => None,
    }
}

/// Reads the first two fields of a record the way `csv_core` does: an
/// unquoted field ends at a comma or a line break; a quoted one runs to its
/// closing quote (`""` is one quote, line breaks included), and whatever
/// follows up to the comma is taken as is. A timestamp with a line break in
/// it is not valid, so only the id may run over lines.
fn record_start(text: &[u8]) -> Start {
    let Some((stamp, rest)) = field(text) else {
        return Start::NoId;
    };
    if stamp.contains(&b'\n') || stamp.contains(&b'\r') {
        return Start::NoId;
    }
    match rest {
        Some(rest) => match field(rest) {
            Some((id, _)) => id_value(&id).map_or(Start::NoId, Start::Id),
            None => Start::Open,
        },
        None => Start::NoId,
    }
}

/// A field's value, and the text after its comma.
type Field<'a> = (Cow<'a, [u8]>, Option<&'a [u8]>);

/// The first field of `text`, unquoted, and what follows its comma
/// (`None` when a line break or the end of `text` ended the record).
/// `None` if its quote stays open to the end of `text`.
fn field(text: &[u8]) -> Option<Field<'_>> {
    let (mut value, mut i) = (Vec::new(), 0);
    if text.first() == Some(&b'"') {
        i = 1;
        loop {
            let quote = i + memchr::memchr(b'"', &text[i..])?;
            value.extend_from_slice(&text[i..quote]);
            if text.get(quote + 1) != Some(&b'"') {
                i = quote + 1;
                break;
            }
            value.push(b'"');
            i = quote + 2;
        }
    }
    let (raw, rest) = match memchr::memchr3(b',', b'\n', b'\r', &text[i..]) {
        Some(at) if text[i + at] == b',' => (&text[i..i + at], Some(&text[i + at + 1..])),
        Some(at) => (&text[i..i + at], None),
        None => (&text[i..], None),
    };
    if i == 0 {
        // Unquoted, the usual case: nothing to copy.
        return Some((Cow::Borrowed(raw), rest));
    }
    value.extend_from_slice(raw);
    Some((Cow::Owned(value), rest))
}

/// The id the cleaning SQL gives an id field's text, if any: ASCII
/// whitespace around it is ignored (as the cast does), a `+` is allowed,
/// and only positive ids are kept.
pub fn id_value(field: &[u8]) -> Option<i64> {
    let digits = field.trim_ascii();
    let digits = digits.strip_prefix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let id = digits.iter().try_fold(0i64, |n, d| {
        n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })?;
    (id > 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_second_field_unquoted_and_trimmed() {
        let cases: [(&[u8], Option<i64>); 16] = [
            (b"2023-01-01 00:00:00,42,https://x,t,k,d", Some(42)),
            (b"\"2023-01-01, 00:00\",\" 42 \",u", Some(42)),
            (b"t,\"4\"\"2\",u", None),
            (b"t,\"4\"2,u", Some(42)),
            (b"t,+0042", Some(42)),
            (b"t,-42,u", None),
            (b"t,0,u", None),
            (b"t,\"42", None),
            (b"\"t,42", None),
            (b"t,99999999999999999999,u", None),
            (b"t,\t42\r,u", Some(42)),
            (b"t,42\r\n", Some(42)),
            (b"t,\"42\r\n\",u", Some(42)),
            (b"t\n,42,u", None),
            (b"\"t\n\",42,u", None),
            (b"creation_time,id,url", None),
        ];
        for (text, id) in cases {
            assert_eq!(record_id(text), id, "{}", String::from_utf8_lossy(text));
        }
    }

    /// `record_id` must agree with the SQL that types the id, on the odd
    /// text as well: trimming and casting are DataFusion's, not ours.
    #[tokio::test]
    async fn parse_id_agrees_with_the_cleaning_sql() {
        let texts = [
            "42",
            " 42 ",
            "+42",
            "-42",
            "0",
            "007",
            "4 2",
            "\t42",
            "42\n",
            "\u{a0}42",
            "1e3",
            "0x10",
            "1_000",
            "٤٢",
            "9223372036854775807",
            "9223372036854775808",
            "",
            " ",
            "42.0",
            "\u{b}42",
            "\u{c}42",
            "\r42",
            " \t42\r\n ",
            "4\t2",
            "\u{2003}42",
            "\u{85}42",
            "\u{1c}42",
        ];
        let values = texts
            .iter()
            .map(|t| format!("('{t}')"))
            .collect::<Vec<_>>()
            .join(", ");
        let ctx = datafusion::prelude::SessionContext::new();
        let sql = format!(
            "SELECT column1 AS text, try_cast(trim(column1) AS BIGINT) AS id FROM (VALUES {values})"
        );
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        for batch in batches {
            let text = arrow::compute::cast(
                batch.column_by_name("text").unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let text = arrow::array::AsArray::as_string::<i32>(&text);
            let ids = batch.column_by_name("id").unwrap();
            let ids = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(ids);
            for row in 0..batch.num_rows() {
                use arrow::array::Array;
                let sql = (!ids.is_null(row))
                    .then(|| ids.value(row))
                    .filter(|&id| id > 0);
                let ours = id_value(text.value(row).as_bytes());
                assert_eq!(ours, sql, "{:?}", text.value(row));
            }
        }
        // The scan reads no id across a line break inside a quoted
        // timestamp: such a record is rejected anyway.
        let sql = "SELECT count(try_cast(trim(t) AS TIMESTAMP(6))) AS n FROM (VALUES \
                   ('2023-01-01 00:00:00\n'), ('\n2023-01-01 00:00:00'), ('2023-01-01\r')) AS v(t)";
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let n = batches[0].column_by_name("n").unwrap();
        assert_eq!(
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(n).value(0),
            0
        );
    }

    #[test]
    fn ranges_split_anywhere_see_each_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.csv");
        let mut text = String::from("creation_time,id,url\n");
        for id in 1..=300 {
            // Quoted line breaks, CRLF and lone CR endings, blank lines.
            let end = ["\n", "\r\n", "\r", "\n\n"][id % 4];
            text += &format!("2023-01-01,{id},\"a\nb\"{end}");
        }
        // An id whose quotes hold a line break, the last record of the file.
        text += "2023-01-01,\"301\r\n\",\"a\"";
        std::fs::write(&path, &text).unwrap();
        let files = [path];
        let mut one = ids(&files, 1, usize::MAX).unwrap().unwrap();
        one.sort_unstable();
        assert_eq!(one, (1..=301).collect::<Vec<i64>>());
        for parts in 2..40 {
            let mut split = ids(&files, parts, usize::MAX).unwrap().unwrap();
            split.sort_unstable();
            assert_eq!(split, one, "{parts} ranges");
        }
        assert!(ids(&files, 3, 100).unwrap().is_none(), "past the limit");
    }

    /// A line longer than a piece is read in pieces, and the records after
    /// it are all seen.
    #[test]
    fn a_line_without_end_is_read_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.csv");
        let mut text = "x".repeat(MAX_PIECE as usize * 2 + 17);
        text += "\n2023-01-01,5,u\n2023-01-01,6,u";
        std::fs::write(&path, &text).unwrap();
        for parts in 1..4 {
            let mut found = ids(std::slice::from_ref(&path), parts, usize::MAX)
                .unwrap()
                .unwrap();
            found.sort_unstable();
            assert_eq!(found, [5, 6], "{parts} ranges");
        }
    }

    #[test]
    fn only_ids_seen_twice_are_staged() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        let b = dir.path().join("b.csv");
        std::fs::write(&a, "h,id\nt,1\nt,2\nt,3\n").unwrap();
        std::fs::write(&b, "h,id\nt,3\nt,4\nt,4\n").unwrap();
        let Staging::Repeated(ids) = scan(&[a, b], usize::MAX).unwrap() else {
            panic!("small inputs are scanned");
        };
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.sort_unstable();
        assert_eq!(ids, [3, 4]);
    }
}
