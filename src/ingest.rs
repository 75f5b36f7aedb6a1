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

use arrow::array::RecordBatch;
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

use crate::csv_records::{Record, RecordRef, RecordSplitter};
use crate::error::Error;
use crate::record::{self, RawBatchBuilder, raw_schema};

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
        let (store, path) = crate::storage::open_url(&url)
            .map_err(|e| fail(format!("cannot open object store: {e}")))?;
        let meta = store
            .head(&path)
            .await
            .map_err(|e| fail(format!("cannot read: {}", crate::storage::describe(&e))))?;
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

    /// The input's path when it is a local, uncompressed regular file: one
    /// that can be read twice cheaply (see [`crate::id_scan`]).
    pub fn rereadable_path(&self) -> Option<&std::path::Path> {
        match &self.location {
            Location::Local(path) if !self.path.ends_with(".gz") && path.is_file() => Some(path),
            _ => None,
        }
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

/// What one pass over the inputs read.
#[derive(Debug, Default, Clone, Copy)]
pub struct IngestStats {
    /// Records read (CSV records after the header, however ragged).
    pub records: u64,
}

pub type BatchSender = mpsc::Sender<Result<RecordBatch, DataFusionError>>;

/// Parses `inputs` in order and sends batches round-robin to `senders`.
/// Runs on a plain thread (it blocks). Records the splitter cannot read
/// (bad quoting, bad bytes, huge fields) go on as rejected rows; only I/O
/// errors and a bad header stop the run, naming the file and line.
pub fn read_inputs(
    inputs: &[InputFile],
    senders: Vec<BatchSender>,
    batch_size: usize,
    counters: Arc<Counters>,
    runtime: &tokio::runtime::Handle,
) -> Result<IngestStats, Error> {
    let mut out = BatchOut {
        senders,
        next: 0,
        batch_size,
        counters,
    };
    let mut stats = IngestStats::default();
    for (position, input) in inputs.iter().enumerate() {
        match read_input(position, input, &mut out, runtime)? {
            Some(records) => stats.records += records,
            None => break,
        }
    }
    Ok(stats)
}

/// Where parsed batches go: round-robin over `senders`.
pub struct BatchOut {
    /// One sender per partition of the table being fed.
    pub senders: Vec<BatchSender>,
    /// The partition the next batch goes to.
    pub next: usize,
    /// Records per batch.
    pub batch_size: usize,
    /// Progress, shared with the caller.
    pub counters: Arc<Counters>,
}

/// Parses the input at `position` among the run's inputs (its
/// `source_input`) into `out`; returns the records read, or `None` when the
/// query stopped listening (its own error wins).
pub fn read_input(
    position: usize,
    input: &InputFile,
    out: &mut BatchOut,
    runtime: &tokio::runtime::Handle,
) -> Result<Option<u64>, Error> {
    let reader = input
        .open(Arc::clone(&out.counters), runtime)
        .map_err(|e| Error::input(&input.path, None, io_message(&e)))?;
    let mut records = RecordSplitter::new(reader);
    read_header(&mut records, &input.path)?;
    let mut builder = RawBatchBuilder::with_capacity(out.batch_size);
    let mut read = 0;
    let (path, position) = (input.path.as_str(), position as i32);
    loop {
        let more = next_with(&mut records, path, |record| match record {
            RecordRef::Fields(fields) => {
                builder.push_fields(
                    (path, position, fields.line()),
                    fields.iter().map(Some),
                    None,
                );
            }
            RecordRef::Broken {
                line,
                reason,
                raw_text,
            } => builder.push_broken((path, position, line), reason, &raw_text),
        })?
        .is_some();
        read += u64::from(more);
        // Bounded in bytes too: a batch of huge records must not overflow
        // Arrow's 32-bit string offsets.
        let full = builder.len() >= out.batch_size || builder.text_bytes() >= MAX_BATCH_TEXT_BYTES;
        if full || (!more && !builder.is_empty()) {
            out.counters
                .records
                .fetch_add(builder.len() as u64, Ordering::Relaxed);
            let sender = &out.senders[out.next % out.senders.len()];
            // A closed receiver means the query already failed; its error wins.
            if sender.blocking_send(Ok(builder.finish())).is_err() {
                return Ok(None);
            }
            out.next += 1;
        }
        if !more {
            return Ok(Some(read));
        }
    }
}

/// Text per batch past which it is sent early.
const MAX_BATCH_TEXT_BYTES: usize = 256 << 20;

/// The next record of a dump; a failed read names the file and line.
pub fn next_record<R: Read>(
    records: &mut RecordSplitter<R>,
    path: &str,
) -> Result<Option<Record>, Error> {
    next_with(records, path, |record| record.into_owned())
}

/// [`RecordSplitter::next_with`], a failed read naming the file and line.
pub fn next_with<R: Read, T>(
    records: &mut RecordSplitter<R>,
    path: &str,
    f: impl FnOnce(RecordRef<'_>) -> T,
) -> Result<Option<T>, Error> {
    records
        .next_with(f)
        .map_err(|e| Error::input(path, Some(records.line()), io_message(&e)))
}

/// Reads a dump's first record and checks it is the header
/// ([`record::check_header`]), as every reader of dumps must.
pub fn read_header<R: Read>(records: &mut RecordSplitter<R>, path: &str) -> Result<(), Error> {
    let message = match next_record(records, path)? {
        None => "empty file, expected a CSV header".to_string(),
        Some(Record::Fields { fields, .. }) => match record::check_header(&fields) {
            Ok(()) => return Ok(()),
            Err(message) => message,
        },
        Some(Record::Broken {
            reason, raw_text, ..
        }) => format!(
            "header does not match: expected `{}`, found `{}` ({reason})",
            record::RAW_FIELDS.join(","),
            crate::clean::text::truncate_at_char(raw_text.trim(), 120)
        ),
    };
    Err(Error::input(path, Some(1), message))
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

pub(crate) fn tokio_stream_from(
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
