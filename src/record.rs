//! The raw-record contract, in one place: the six fields of a dump record
//! and their JSON names, the tolerant header check, the Arrow schema of
//! `raw_campaigns` that the cleaning SQL reads, and the one builder of it.
//! `preprocess` (CSV dumps), `produce` (CSV to Kafka) and `stream` (Kafka
//! messages) all go through here, so they agree on what a record is.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::reject::RejectReason;

/// The six text fields of a raw record, in the CSV header's order; also the
/// keys of a record as a JSON object.
pub const RAW_FIELDS: [&str; 6] = [
    "creation_time",
    "id",
    "url",
    "title",
    "keywords",
    "description",
];

/// JSON key under which `produce` keeps the values past the sixth of a
/// ragged CSV row, so the stream rejects it as `preprocess` does.
pub const EXTRA_FIELDS: &str = "extra_fields";

/// Schema of `raw_campaigns`: lineage, the field count as read, the whole
/// record for rows whose fields cannot be trusted, the reader's reject
/// reason for records it could not split, and the six fields.
pub fn raw_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("source_file", DataType::Utf8, false),
        // The input's position on the command line: with `source_line`, a
        // key unique per record even when one file is given twice.
        Field::new("source_input", DataType::Int32, false),
        Field::new("source_line", DataType::Int64, false),
        Field::new("field_count", DataType::Int32, false),
        Field::new("raw_record", DataType::Utf8, true),
        Field::new("read_error", DataType::Utf8, true),
    ];
    fields.extend(
        RAW_FIELDS
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, true)),
    );
    Arc::new(Schema::new(fields))
}

/// Checks a header row: the six names in order, ignoring a byte-order mark,
/// case and surrounding spaces. The error says what was found.
pub fn check_header<S: AsRef<[u8]>>(fields: &[S]) -> Result<(), String> {
    let found: Vec<String> = fields
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f.as_ref())
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    if found == RAW_FIELDS {
        return Ok(());
    }
    let found = found.join(",");
    Err(format!(
        "header does not match: expected `{}`, found `{}`",
        RAW_FIELDS.join(","),
        crate::clean::text::truncate_at_char(&found, 120)
    ))
}

/// Accumulates records into a `raw_campaigns` batch.
#[derive(Debug)]
pub struct RawBatchBuilder {
    source_file: StringBuilder,
    source_input: Int32Builder,
    source_line: Int64Builder,
    field_count: Int32Builder,
    raw_record: StringBuilder,
    read_error: StringBuilder,
    fields: [StringBuilder; 6],
}

impl Default for RawBatchBuilder {
    fn default() -> Self {
        Self::with_capacity(1024)
    }
}

impl RawBatchBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            source_file: StringBuilder::with_capacity(rows, rows * 16),
            source_input: Int32Builder::with_capacity(rows),
            source_line: Int64Builder::with_capacity(rows),
            field_count: Int32Builder::with_capacity(rows),
            raw_record: StringBuilder::new(),
            read_error: StringBuilder::new(),
            fields: std::array::from_fn(|_| StringBuilder::with_capacity(rows, rows * 48)),
        }
    }

    pub fn len(&self) -> usize {
        self.source_line.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of text held so far (to bound a batch by size, not only rows).
    pub fn text_bytes(&self) -> usize {
        self.fields
            .iter()
            .map(|b| b.values_slice().len())
            .sum::<usize>()
            + self.raw_record.values_slice().len()
    }

    fn lineage(&mut self, file: &str, input: i32, line: u64) {
        self.source_file.append_value(file);
        self.source_input.append_value(input);
        self.source_line.append_value(line as i64);
    }

    /// A record split into fields (`None` for a JSON `null`). `raw` is the
    /// record's text, kept for ragged rows whose fields cannot be trusted
    /// (rebuilt from the fields when not given).
    pub fn push_fields<'a, I>(
        &mut self,
        (file, input, line): (&str, i32, u64),
        fields: I,
        raw: Option<&str>,
    ) where
        I: ExactSizeIterator<Item = Option<&'a str>> + Clone,
    {
        self.lineage(file, input, line);
        self.field_count.append_value(fields.len() as i32);
        self.read_error.append_null();
        if fields.len() == RAW_FIELDS.len() {
            self.raw_record.append_option(raw);
            for (builder, field) in self.fields.iter_mut().zip(fields) {
                builder.append_option(field);
            }
        } else {
            match raw {
                Some(raw) => self.raw_record.append_value(raw),
                None => self.raw_record.append_value(rejoin(fields)),
            }
            self.fields.iter_mut().for_each(StringBuilder::append_null);
        }
    }

    /// A record the reader could not split, rejected with `reason`.
    pub fn push_broken(
        &mut self,
        (file, input, line): (&str, i32, u64),
        reason: RejectReason,
        raw_text: &str,
    ) {
        self.lineage(file, input, line);
        self.field_count.append_value(0);
        self.raw_record.append_value(raw_text);
        self.read_error.append_value(reason.as_str());
        self.fields.iter_mut().for_each(StringBuilder::append_null);
    }

    /// The batch so far; the builder starts again empty, with room for a
    /// batch like this one. (Arrow's `finish` leaves a builder with no
    /// capacity: the next batch would grow each column by doubling and
    /// copying, 3% of `preprocess`'s CPU.)
    pub fn finish(&mut self) -> RecordBatch {
        std::mem::replace(self, self.sized_like()).into_batch()
    }

    /// The batch, when no other follows (one micro-batch's records): no
    /// room is set aside for a next one.
    pub fn into_batch(self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new({ self.source_file }.finish()),
            Arc::new({ self.source_input }.finish()),
            Arc::new({ self.source_line }.finish()),
            Arc::new({ self.field_count }.finish()),
            Arc::new({ self.raw_record }.finish()),
            Arc::new({ self.read_error }.finish()),
        ];
        columns.extend(
            self.fields
                .into_iter()
                .map(|mut b| Arc::new(b.finish()) as ArrayRef),
        );
        RecordBatch::try_new(raw_schema(), columns).expect("columns match raw_schema")
    }

    /// An empty builder with room for as many rows and bytes as this one
    /// holds, and an eighth more.
    fn sized_like(&self) -> Self {
        let rows = self.len();
        let like = |b: &StringBuilder| {
            let bytes = b.values_slice().len();
            StringBuilder::with_capacity(rows, bytes + bytes / 8)
        };
        Self {
            source_file: like(&self.source_file),
            source_input: Int32Builder::with_capacity(rows),
            source_line: Int64Builder::with_capacity(rows),
            field_count: Int32Builder::with_capacity(rows),
            raw_record: like(&self.raw_record),
            read_error: like(&self.read_error),
            fields: std::array::from_fn(|i| like(&self.fields[i])),
        }
    }
}

/// Fields written back as one CSV line, with the quoting they need.
fn rejoin<'a>(fields: impl Iterator<Item = Option<&'a str>>) -> String {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let _ = writer.write_record(fields.map(|f| f.unwrap_or_default()));
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_check_tolerates_bom_case_and_spaces_only() {
        assert!(
            check_header(&[
                "\u{feff}Creation_Time",
                " id",
                "URL ",
                "title",
                "keywords",
                "description"
            ])
            .is_ok()
        );
        let err =
            check_header(&["creation_time", "id", "url", "title", "description"]).unwrap_err();
        assert!(
            err.contains("found `creation_time,id,url,title,description`"),
            "{err}"
        );
    }

    #[test]
    fn ragged_rows_keep_their_text_and_broken_ones_their_reason() {
        let mut builder = RawBatchBuilder::default();
        builder.push_fields(("f", 0, 2), ["a", "b,c"].into_iter().map(Some), None);
        builder.push_broken(("f", 0, 3), RejectReason::BadEncoding, "x\u{fffd}");
        let batch = builder.finish();
        assert_eq!(batch.schema(), raw_schema());
        let raw =
            arrow::array::AsArray::as_string::<i32>(batch.column_by_name("raw_record").unwrap());
        assert_eq!(raw.value(0), "a,\"b,c\"");
        let errors =
            arrow::array::AsArray::as_string::<i32>(batch.column_by_name("read_error").unwrap());
        assert_eq!(errors.value(1), "bad_encoding");
        assert!(arrow::array::Array::is_null(errors, 0));
    }
}
