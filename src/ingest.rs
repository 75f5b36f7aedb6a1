//! Reading raw campaign dumps: resolves inputs (local paths, `file://` and
//! `s3://` URLs through `object_store`, `.gz` on the fly), parses the CSV with
//! the `csv` crate on one thread, and hands Arrow batches of the
//! `raw_campaigns` schema round-robin to N DataFusion partitions.
//!
//! The file is streamed, never loaded: memory is bounded by the batch size
//! times the channel depth.

use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{
    ArrayBuilder, Int32Builder, Int64Builder, RecordBatch, StringArray, StringBuilder,
};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::engine::{RAW_FIELDS, raw_schema};
use crate::error::Error;

/// One input dump, resolved and checked to exist.
#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    /// The input as the user named it.
    pub path: String,
    /// Size in bytes (compressed size for `.gz`).
    pub bytes: u64,
    /// Last modification time, RFC 3339.
    pub modified: Option<String>,
    #[serde(skip)]
    location: Location,
}

#[derive(Debug, Clone)]
enum Location {
    Local(PathBuf),
    Remote(Arc<dyn ObjectStore>, StorePath),
}

impl InputFile {
    /// Resolves `input` and reads its size and mtime; a missing or unreadable
    /// input is an [`Error::Input`].
    pub async fn resolve(input: &str) -> Result<Self, Error> {
        let fail = |message: String| Error::input(input, None, message);
        if let Some(rest) = input.strip_prefix("file://") {
            return Self::local(input, PathBuf::from(rest));
        }
        if !input.contains("://") {
            return Self::local(input, PathBuf::from(input));
        }
        let url = url::Url::parse(input).map_err(|e| fail(format!("not a valid URL: {e}")))?;
        let (store, path) = object_store::parse_url_opts(
            &url,
            std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v)),
        )
        .map_err(|e| fail(format!("cannot open object store: {e}")))?;
        let store: Arc<dyn ObjectStore> = Arc::from(store);
        let meta = store
            .head(&path)
            .await
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        Ok(Self {
            path: input.to_string(),
            bytes: meta.size,
            modified: Some(meta.last_modified.to_rfc3339()),
            location: Location::Remote(store, path),
        })
    }

    fn local(input: &str, path: PathBuf) -> Result<Self, Error> {
        let meta =
            std::fs::metadata(&path).map_err(|e| Error::input(input, None, io_message(&e)))?;
        // Named pipes are welcome: `--input <(zcat dump.csv.gz)` streams.
        let fifo = std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type());
        if !meta.is_file() && !fifo {
            return Err(Error::input(input, None, "not a file"));
        }
        let modified = meta
            .modified()
            .ok()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339());
        Ok(Self {
            path: input.to_string(),
            bytes: meta.len(),
            modified,
            location: Location::Local(path),
        })
    }

    /// A blocking reader over the (decompressed) bytes; `counter` counts the
    /// raw bytes read, for progress.
    pub fn open(
        &self,
        counters: Arc<Counters>,
        runtime: &tokio::runtime::Handle,
    ) -> io::Result<Box<dyn Read + Send>> {
        let raw: Box<dyn Read + Send> = match &self.location {
            Location::Local(path) => Box::new(std::fs::File::open(path)?),
            Location::Remote(store, path) => {
                let result = runtime
                    .block_on(store.get(path))
                    .map_err(io::Error::other)?;
                let stream = result
                    .into_stream()
                    .map(|chunk| chunk.map_err(io::Error::other));
                let reader = tokio_util::io::StreamReader::new(stream);
                Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                    reader,
                    runtime.clone(),
                ))
            }
        };
        let counted = BufReader::with_capacity(
            1 << 20,
            CountingReader {
                inner: raw,
                counters,
            },
        );
        if self.path.ends_with(".gz") {
            Ok(Box::new(flate2::read::MultiGzDecoder::new(counted)))
        } else {
            Ok(Box::new(counted))
        }
    }
}

/// A short, human reason for an I/O error, without Rust's `(os error 2)` noise.
pub fn io_message(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => err.to_string(),
    }
}

/// Progress of a read, shared with whoever draws a progress bar.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes read from the inputs (compressed bytes for `.gz`).
    pub bytes: AtomicU64,
    /// Records parsed.
    pub records: AtomicU64,
}

struct CountingReader<R> {
    inner: R,
    counters: Arc<Counters>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Accumulates raw records into a `raw_campaigns` batch.
struct RawBatchBuilder {
    schema: SchemaRef,
    source_line: Int64Builder,
    field_count: Int32Builder,
    raw_record: StringBuilder,
    fields: [StringBuilder; 6],
}

impl RawBatchBuilder {
    fn new(capacity: usize) -> Self {
        Self {
            schema: raw_schema(),
            source_line: Int64Builder::with_capacity(capacity),
            field_count: Int32Builder::with_capacity(capacity),
            raw_record: StringBuilder::new(),
            fields: std::array::from_fn(|_| StringBuilder::with_capacity(capacity, capacity * 48)),
        }
    }

    fn len(&self) -> usize {
        self.source_line.len()
    }

    /// Adds a record whose bytes are known to be UTF-8. Records with the
    /// wrong number of fields keep their whole text in `raw_record`.
    fn push(&mut self, record: &csv::StringRecord, line: u64) {
        self.source_line.append_value(line as i64);
        self.field_count.append_value(record.len() as i32);
        if record.len() == RAW_FIELDS.len() {
            self.raw_record.append_null();
            for (builder, field) in self.fields.iter_mut().zip(record.iter()) {
                builder.append_value(field);
            }
        } else {
            self.raw_record.append_value(rejoin(record));
            self.fields.iter_mut().for_each(StringBuilder::append_null);
        }
    }

    fn finish(&mut self, source_file: &str) -> Result<RecordBatch, DataFusionError> {
        let rows = self.len();
        let mut columns: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                source_file,
                rows,
            ))),
            Arc::new(self.source_line.finish()),
            Arc::new(self.field_count.finish()),
            Arc::new(self.raw_record.finish()),
        ];
        columns.extend(self.fields.iter_mut().map(|b| Arc::new(b.finish()) as _));
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

/// A record written back as one CSV line, with the quoting it needs.
fn rejoin(record: &csv::StringRecord) -> String {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let _ = writer.write_record(record);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

/// What one pass over the inputs read.
#[derive(Debug, Default, Clone, Copy)]
pub struct IngestStats {
    /// Records read (CSV records after the header, however ragged).
    pub records: u64,
}

type BatchSender = mpsc::Sender<Result<RecordBatch, DataFusionError>>;

/// Parses `inputs` in order and sends batches round-robin to `senders`.
/// Runs on a plain thread (it blocks); the first error also lands in `failure`
/// so the caller can report it with its file and line intact.
pub fn read_inputs(
    inputs: &[InputFile],
    senders: Vec<BatchSender>,
    batch_size: usize,
    counters: Arc<Counters>,
    runtime: &tokio::runtime::Handle,
) -> Result<IngestStats, Error> {
    let mut stats = IngestStats::default();
    let mut next = 0usize;
    for input in inputs {
        let reader = input
            .open(Arc::clone(&counters), runtime)
            .map_err(|e| Error::input(&input.path, None, io_message(&e)))?;
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(reader);
        check_header(&mut csv, &input.path)?;
        let mut builder = RawBatchBuilder::new(batch_size);
        let mut record = csv::ByteRecord::new();
        loop {
            let more = csv
                .read_byte_record(&mut record)
                .map_err(|e| csv_error(&input.path, &e))?;
            if more {
                let line = record.position().map_or(0, |p| p.line());
                let text = csv::StringRecord::from_byte_record(std::mem::take(&mut record))
                    .map_err(|_| Error::input(&input.path, Some(line), "invalid UTF-8"))?;
                builder.push(&text, line);
                record = text.into_byte_record();
                stats.records += 1;
            }
            if builder.len() >= batch_size || (!more && builder.len() > 0) {
                counters
                    .records
                    .fetch_add(builder.len() as u64, Ordering::Relaxed);
                let batch = builder
                    .finish(&input.path)
                    .map_err(|e| Error::input(&input.path, None, e.to_string()))?;
                // A closed receiver means the query already failed; its error wins.
                if senders[next % senders.len()]
                    .blocking_send(Ok(batch))
                    .is_err()
                {
                    return Ok(stats);
                }
                next += 1;
            }
            if !more {
                break;
            }
        }
    }
    Ok(stats)
}

fn check_header<R: Read>(csv: &mut csv::Reader<R>, path: &str) -> Result<(), Error> {
    let mut header = csv::ByteRecord::new();
    if !csv
        .read_byte_record(&mut header)
        .map_err(|e| csv_error(path, &e))?
    {
        return Err(Error::input(
            path,
            Some(1),
            "empty file, expected a CSV header",
        ));
    }
    let fields: Vec<String> = header
        .iter()
        .map(|f| {
            String::from_utf8_lossy(f)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    if fields != RAW_FIELDS {
        let found = fields.join(",");
        let found = crate::clean::text::truncate_at_char(&found, 120);
        return Err(Error::input(
            path,
            Some(1),
            format!(
                "header does not match: expected `{}`, found `{found}`",
                RAW_FIELDS.join(",")
            ),
        ));
    }
    Ok(())
}

fn csv_error(path: &str, err: &csv::Error) -> Error {
    let line = err.position().map(|p| p.line());
    match err.kind() {
        csv::ErrorKind::Io(io) => Error::input(path, line, io_message(io)),
        _ => Error::input(path, line, err.to_string()),
    }
}

/// One DataFusion partition of `raw_campaigns`, fed by [`read_inputs`].
#[derive(Debug)]
struct ChannelPartition {
    schema: SchemaRef,
    receiver: Mutex<Option<mpsc::Receiver<Result<RecordBatch, DataFusionError>>>>,
}

impl PartitionStream for ChannelPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let receiver = self.receiver.lock().ok().and_then(|mut r| r.take());
        let stream = match receiver {
            Some(rx) => tokio_stream_from(rx).boxed(),
            None => futures::stream::once(async {
                Err(DataFusionError::Execution(
                    "raw input stream can be read only once".into(),
                ))
            })
            .boxed(),
        };
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        ))
    }
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<RecordBatch, DataFusionError>>,
) -> impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A one-shot `raw_campaigns` table with `partitions` partitions, and the
/// senders that feed it.
pub fn channel_table(
    partitions: usize,
) -> datafusion::error::Result<(StreamingTable, Vec<BatchSender>)> {
    let schema = raw_schema();
    let mut senders = Vec::with_capacity(partitions);
    let mut streams: Vec<Arc<dyn PartitionStream>> = Vec::with_capacity(partitions);
    for _ in 0..partitions.max(1) {
        let (tx, rx) = mpsc::channel(2);
        senders.push(tx);
        streams.push(Arc::new(ChannelPartition {
            schema: Arc::clone(&schema),
            receiver: Mutex::new(Some(rx)),
        }));
    }
    Ok((StreamingTable::try_new(schema, streams)?, senders))
}
