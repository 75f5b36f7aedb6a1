//! Splitting a raw CSV dump into records the way mature readers do when the
//! input is hostile (DuckDB's `ignore_errors`, Spark's `PERMISSIVE` mode):
//! a bad record is reported with a reason and reading goes on.
//!
//! Built on `csv_core` rather than the `csv` crate's reader because recovery
//! needs the raw bytes of a record: when a quoted field runs past a line end
//! and the record comes out with the wrong number of fields (a stray opening
//! quote), the first line of it is rejected as `unbalanced_quote` and parsing
//! restarts on the next line, so the records after a stray quote are not
//! swallowed. A record is held in memory whole, so its size is bounded
//! ([`MAX_RECORD_BYTES`]): past it, the same recovery applies.

use std::io::{self, Read};

use crate::reject::RejectReason;

/// Fields longer than this are rejected (`field_too_large`).
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// A record still open after this many bytes is treated as broken.
pub const MAX_RECORD_BYTES: usize = 8 << 20;
/// Raw text kept for a rejected record.
const MAX_RAW_TEXT_BYTES: usize = 8 << 10;

/// One record of the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Parsed fields, valid UTF-8, each within [`MAX_FIELD_BYTES`].
    Fields { line: u64, fields: Vec<String> },
    /// A record the reader could not turn into fields, with its text as read
    /// (lossily decoded, bounded).
    Broken {
        line: u64,
        reason: RejectReason,
        raw_text: String,
    },
}

impl Record {
    /// The bytes of a broken record as read (bounded like its text), for
    /// tools that pass records on (`adlens produce`).
    pub fn broken_bytes(raw: &[u8]) -> Vec<u8> {
        raw[..raw.len().min(MAX_RAW_TEXT_BYTES)].to_vec()
    }
}

/// A record as [`RecordSplitter::next_with`] hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef<'a> {
    /// Parsed fields, valid UTF-8, each within [`MAX_FIELD_BYTES`].
    Fields(Fields<'a>),
    /// As [`Record::Broken`].
    Broken {
        line: u64,
        reason: RejectReason,
        raw_text: String,
    },
}

impl RecordRef<'_> {
    /// The record with its fields copied out of the splitter.
    pub fn into_owned(self) -> Record {
        match self {
            RecordRef::Fields(fields) => Record::Fields {
                line: fields.line,
                fields: fields.iter().map(str::to_string).collect(),
            },
            RecordRef::Broken {
                line,
                reason,
                raw_text,
            } => Record::Broken {
                line,
                reason,
                raw_text,
            },
        }
    }
}

/// The fields of one record, borrowed from the splitter's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    line: u64,
    /// Every field's text, one after the other.
    text: &'a str,
    /// Where each field ends in `text`.
    ends: &'a [usize],
}

impl<'a> Fields<'a> {
    /// The line the record starts on (the header is line 1).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Each field's text, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a str> + Clone + use<'a> {
        let (text, ends) = (self.text, self.ends);
        (0..ends.len()).map(move |i| {
            let start = if i == 0 { 0 } else { ends[i - 1] };
            &text[start..ends[i]]
        })
    }
}

impl Record {
    /// The line the record starts on (the header is line 1).
    pub fn line(&self) -> u64 {
        match self {
            Record::Fields { line, .. } | Record::Broken { line, .. } => *line,
        }
    }
}

/// Reads records from a byte stream.
pub struct RecordSplitter<R> {
    input: R,
    core: csv_core::Reader,
    buf: Vec<u8>,
    /// Bytes asked of `input` per read.
    chunk: usize,
    /// Start of the unparsed bytes in `buf`.
    pos: usize,
    eof: bool,
    /// Line number of `buf[pos]`.
    line: u64,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// The bytes of the last record returned (bounded), see [`Self::last_raw`].
    last_raw: Vec<u8>,
}

impl<R> std::fmt::Debug for RecordSplitter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSplitter")
            .field("line", &self.line)
            .finish()
    }
}

/// Where one parse attempt ended.
enum Parsed {
    /// A whole record of `len` raw bytes; fields in `out`/`ends`.
    Record {
        len: usize,
        fields: usize,
    },
    /// A record that grew past the size bound.
    TooLong,
    End,
}

impl<R: Read> RecordSplitter<R> {
    /// A splitter reading `input` 1 MiB at a time (a dump).
    pub fn new(input: R) -> Self {
        Self::with_chunk(input, 1 << 20)
    }

    /// A splitter reading `input` `chunk` bytes at a time: the size of a
    /// message for one record, so splitting a small message does not cost
    /// a megabyte of zeroed buffer.
    pub fn with_chunk(input: R, chunk: usize) -> Self {
        let chunk = chunk.max(1);
        Self {
            input,
            core: csv_core::Reader::new(),
            buf: Vec::with_capacity(chunk),
            chunk,
            pos: 0,
            eof: false,
            line: 1,
            out: vec![0; chunk.min(1 << 16)],
            ends: vec![0; 16],
            last_raw: Vec::new(),
        }
    }

    /// The next record, or `None` at the end. Only I/O errors are errors.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        self.next_with(|record| record.into_owned())
    }

    /// The next record handed to `f` as parsed, its fields borrowed from the
    /// splitter: a dump's reader copies each field once, into its batch,
    /// instead of first into a `String` of its own.
    pub fn next_with<T>(&mut self, f: impl FnOnce(RecordRef<'_>) -> T) -> io::Result<Option<T>> {
        self.core.reset();
        let (len, fields) = match self.parse()? {
            Parsed::End => return Ok(None),
            Parsed::TooLong => return self.recover().map(|r| Some(f(r))),
            Parsed::Record { len, fields } => (len, fields),
        };
        let raw = &self.buf[self.pos..self.pos + len];
        // Blank lines before a record are skipped, but still counted.
        let skipped = raw
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let line = self.line + count_newlines(&raw[..skipped]);
        let body = self.pos + skipped..self.pos + len;
        if fields != crate::record::RAW_FIELDS.len() && spans_lines(&self.buf[body.clone()]) {
            self.line = line;
            self.pos += skipped;
            return self.recover().map(|r| Some(f(r)));
        }
        self.line += count_newlines(raw);
        self.pos += len;
        let verdict = self.judge(&self.buf[body.clone()], fields);
        Ok(Some(match verdict {
            Ok(text) => f(RecordRef::Fields(Fields {
                line,
                text,
                ends: &self.ends[..fields],
            })),
            Err(reason) => {
                let body = trim_terminator(&self.buf[body]);
                self.last_raw = Record::broken_bytes(body);
                f(RecordRef::Broken {
                    line,
                    reason,
                    raw_text: lossy(body),
                })
            }
        }))
    }

    /// The line the next record starts on: where a failed read was.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The bytes as read of the last record returned, when it was broken
    /// (at most 8 KiB): what `produce` sends on, so the stream judges the
    /// same bytes `preprocess` did.
    pub fn last_raw(&self) -> &[u8] {
        &self.last_raw
    }

    /// Parses one record starting at `pos`, reading more input as needed.
    fn parse(&mut self) -> io::Result<Parsed> {
        let (mut consumed, mut written, mut fields) = (0usize, 0usize, 0usize);
        loop {
            // An empty input tells csv_core the data ended: only say so at EOF.
            if self.pos + consumed == self.buf.len() && !self.eof {
                self.fill()?;
                continue;
            }
            let input = &self.buf[self.pos + consumed..];
            let (result, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.out[written..], &mut self.ends[fields..]);
            consumed += nin;
            written += nout;
            fields += nend;
            match result {
                csv_core::ReadRecordResult::Record => {
                    return Ok(Parsed::Record {
                        len: consumed,
                        fields,
                    });
                }
                csv_core::ReadRecordResult::End => return Ok(Parsed::End),
                csv_core::ReadRecordResult::OutputFull => {
                    let len = self.out.len();
                    self.out.resize(len * 2, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                csv_core::ReadRecordResult::InputEmpty => {
                    if consumed > MAX_RECORD_BYTES {
                        return Ok(Parsed::TooLong);
                    }
                }
            }
        }
    }

    /// Reads more input into `buf`, first dropping what was parsed.
    fn fill(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + self.chunk, 0);
        let n = loop {
            match self.input.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(len + n);
        self.eof = n == 0;
        Ok(())
    }

    /// Rejects the physical line at `pos` as `unbalanced_quote` (or
    /// `field_too_large` when it alone is over the record bound) and moves
    /// past it; the next call parses the following line afresh.
    fn recover(&mut self) -> io::Result<RecordRef<'static>> {
        let line = self.line;
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let line_bytes = trim_terminator(&self.buf[self.pos..self.pos + end]);
                self.last_raw = Record::broken_bytes(line_bytes);
                let text = lossy(line_bytes);
                self.pos += end + 1;
                self.line += 1;
                return Ok(RecordRef::Broken {
                    line,
                    reason: RejectReason::UnbalancedQuote,
                    raw_text: text,
                });
            }
            if self.eof {
                self.last_raw = Record::broken_bytes(&self.buf[self.pos..]);
                let text = lossy(&self.buf[self.pos..]);
                self.pos = self.buf.len();
                return Ok(RecordRef::Broken {
                    line,
                    reason: RejectReason::UnbalancedQuote,
                    raw_text: text,
                });
            }
            if self.buf.len() - self.pos > MAX_RECORD_BYTES {
                // One line longer than any record may be: skip to its end.
                self.last_raw = Record::broken_bytes(&self.buf[self.pos..]);
                let text = lossy(&self.buf[self.pos..]);
                self.skip_line()?;
                self.line += 1;
                return Ok(RecordRef::Broken {
                    line,
                    reason: RejectReason::FieldTooLarge,
                    raw_text: text,
                });
            }
            self.fill()?;
        }
    }

    /// Discards input up to and including the next newline.
    fn skip_line(&mut self) -> io::Result<()> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                self.pos += end + 1;
                return Ok(());
            }
            self.pos = self.buf.len();
            if self.eof {
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// The parsed record's fields as one text (`ends` splits it), or the
    /// reason it is broken. The text is checked as UTF-8 once, whole: each
    /// field is then valid exactly when every field end is a character
    /// boundary.
    fn judge<'a>(&'a self, body: &[u8], fields: usize) -> Result<&'a str, RejectReason> {
        // A quote left open on the last line: the same fault as one that
        // swallows the next lines, and named the same.
        if fields != crate::record::RAW_FIELDS.len()
            && memchr::memchr_iter(b'"', body).count() % 2 == 1
        {
            return Err(RejectReason::UnbalancedQuote);
        }
        // Faults are named in field order, as a field-by-field check would:
        // bad bytes before a field that is too large win.
        let ends = &self.ends[..fields];
        let mut start = 0;
        let too_large = ends.iter().position(|&end| {
            let large = end - start > MAX_FIELD_BYTES;
            start = if large { start } else { end };
            large
        });
        let checked = &ends[..too_large.unwrap_or(fields)];
        let text =
            std::str::from_utf8(&self.out[..start]).map_err(|_| RejectReason::BadEncoding)?;
        if !checked.iter().all(|&end| text.is_char_boundary(end)) {
            return Err(RejectReason::BadEncoding);
        }
        match too_large {
            Some(_) => Err(RejectReason::FieldTooLarge),
            None => Ok(text),
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// True when a newline occurs before the record's terminator.
fn spans_lines(body: &[u8]) -> bool {
    trim_terminator(body).contains(&b'\n')
}

fn trim_terminator(body: &[u8]) -> &[u8] {
    let mut end = body.len();
    while end > 0 && matches!(body[end - 1], b'\r' | b'\n') {
        end -= 1;
    }
    &body[..end]
}

/// Bytes as text for a rejects table: invalid UTF-8 replaced, bounded.
fn lossy(bytes: &[u8]) -> String {
    let bounded = &bytes[..bytes.len().min(MAX_RAW_TEXT_BYTES)];
    String::from_utf8_lossy(bounded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &[u8]) -> Vec<Record> {
        let mut splitter = RecordSplitter::new(text);
        let mut records = Vec::new();
        while let Some(record) = splitter.next_record().unwrap() {
            records.push(record);
        }
        records
    }

    fn fields(line: u64, values: &[&str]) -> Record {
        Record::Fields {
            line,
            fields: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn quoted_newlines_stay_in_their_field_and_lines_are_counted() {
        let records = split(b"a,b,c,d,e,f\n1,2,3,\"x\ny\",5,6\r\n\n7,8,9,10,11,12");
        assert_eq!(
            records,
            [
                fields(1, &["a", "b", "c", "d", "e", "f"]),
                fields(2, &["1", "2", "3", "x\ny", "5", "6"]),
                fields(5, &["7", "8", "9", "10", "11", "12"]),
            ]
        );
    }

    #[test]
    fn a_stray_quote_rejects_its_line_only() {
        let text = b"2023-05-17 20:21:51.822000,1761259201,https://a.com/,\"Unclosed title,kw,d\n\
            t,2,u,v,w,x\nt,3,u,v,w,x\nt,4,u,v,w,x\n";
        let records = split(text);
        assert_eq!(records.len(), 4);
        assert_eq!(
            records[0],
            Record::Broken {
                line: 1,
                reason: RejectReason::UnbalancedQuote,
                raw_text:
                    "2023-05-17 20:21:51.822000,1761259201,https://a.com/,\"Unclosed title,kw,d"
                        .into()
            }
        );
        assert_eq!(records[1], fields(2, &["t", "2", "u", "v", "w", "x"]));
        assert_eq!(records[3], fields(4, &["t", "4", "u", "v", "w", "x"]));
    }

    #[test]
    fn bad_bytes_and_huge_fields_are_broken_records_not_errors() {
        let mut text = b"a,b,c,d,e,f\n1,2,\xff,4,5,6\n1,2,".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_FIELD_BYTES + 1));
        text.extend(b",4,5,6\n7,8,9,10,11,12\n");
        let records = split(&text);
        assert_eq!(records.len(), 4);
        assert!(matches!(
            &records[1],
            Record::Broken { line: 2, reason: RejectReason::BadEncoding, raw_text } if raw_text == "1,2,\u{fffd},4,5,6"
        ));
        assert!(matches!(
            &records[2],
            Record::Broken {
                line: 3,
                reason: RejectReason::FieldTooLarge,
                ..
            }
        ));
        assert_eq!(records[3], fields(4, &["7", "8", "9", "10", "11", "12"]));
    }

    #[test]
    fn faults_are_named_in_field_order_and_each_field_must_be_valid_alone() {
        let huge = "x".repeat(MAX_FIELD_BYTES + 1);
        let reason = |text: &[u8]| match &split(text)[..] {
            [Record::Broken { reason, .. }] => Some(*reason),
            _ => None,
        };
        let mut bad_then_huge = b"1,\xff,".to_vec();
        bad_then_huge.extend(huge.as_bytes());
        bad_then_huge.extend(b",4,5,6\n");
        assert_eq!(reason(&bad_then_huge), Some(RejectReason::BadEncoding));
        let mut huge_then_bad = b"1,".to_vec();
        huge_then_bad.extend(huge.as_bytes());
        huge_then_bad.extend(b",\xff,4,5,6\n");
        assert_eq!(reason(&huge_then_bad), Some(RejectReason::FieldTooLarge));
        // `\xc3` and `\xa9` are each invalid, though side by side they are `é`.
        assert_eq!(
            reason(b"1,2,\xc3,\xa9,5,6\n"),
            Some(RejectReason::BadEncoding)
        );
        assert_eq!(
            split("1,2,\u{e9},\u{1f600},5,6\n".as_bytes()),
            [fields(1, &["1", "2", "\u{e9}", "\u{1f600}", "5", "6"])]
        );
    }

    #[test]
    fn an_unterminated_quote_at_the_end_rejects_one_line_per_record_after_it() {
        let records = split(b"1,2,\"open,4,5,6\n7,8,9,10,11,12\n");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].line(), 1);
        assert_eq!(records[1], fields(2, &["7", "8", "9", "10", "11", "12"]));
        let last = split(b"1,2,3,\"open");
        assert!(matches!(
            &last[0],
            Record::Broken {
                reason: RejectReason::UnbalancedQuote,
                ..
            }
        ));
    }
}
