//! `adlens produce`: replays a campaign CSV (the raw dump or a generated
//! one) into a topic, one message per record keyed by its id, as JSON objects
//! like the original Python producer sent, or as CSV lines. For demos and
//! load tests of `adlens stream`.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use crate::cli::ProduceArgs;
use crate::csv_records::{Record, RecordSplitter};
use crate::error::Error;
use crate::ingest::{self, Counters, InputFile};
use crate::kafka::{self, LogContext, Outgoing};
use crate::record::{EXTRA_FIELDS, RAW_FIELDS};
use crate::stream::decode::InputFormat;

/// A keyed message ready to send.
type Keyed = (Vec<u8>, Vec<u8>);

pub async fn run(args: &ProduceArgs, progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let input = InputFile::resolve(&args.file).await?;
    let producer: rdkafka::producer::FutureProducer<LogContext> = kafka::client_config(
        &args.kafka.brokers,
        &kafka::PRODUCER_DEFAULTS,
        &args.kafka.settings,
    )
    .create_with_context(LogContext)
    .map_err(|e| Error::Kafka {
        topic: args.topic.clone(),
        message: e.to_string(),
    })?;
    // Smaller chunks at low rates, so the pace is even rather than bursty.
    let chunk = args
        .rate
        .map_or(10_000, |r| ((r / 20.0) as usize).clamp(1, 10_000));
    let (tx, mut rx) = mpsc::channel::<Result<Vec<Keyed>, Error>>(4);
    let reader = {
        let (format, limit) = (args.format, args.limit.unwrap_or(u64::MAX));
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || read(&input, format, limit, chunk, &tx, &runtime))
    };
    let mut sent = 0u64;
    let pace_start = Instant::now();
    while let Some(messages) = rx.recv().await {
        let messages = messages?;
        if let Some(rate) = args.rate {
            let due = pace_start + Duration::from_secs_f64(sent as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let outgoing = messages.iter().map(|(key, payload)| Outgoing {
            topic: &args.topic,
            key: Some(key),
            payload,
        });
        sent += kafka::produce_all(&producer, outgoing).await? as u64;
    }
    reader.await.context("reading the CSV")??;
    if progress {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "produced {sent} records to `{}` in {secs:.1}s ({:.0} records/s)",
            args.topic,
            sent as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}

/// Reads records and sends them in chunks; stops early if the receiver is gone.
fn read(
    input: &InputFile,
    format: InputFormat,
    limit: u64,
    chunk: usize,
    tx: &mpsc::Sender<Result<Vec<Keyed>, Error>>,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let file = input
        .open(Arc::new(Counters::default()), runtime)
        .map_err(|e| Error::input(&input.path, None, ingest::io_message(&e)))?;
    let mut records = RecordSplitter::new(Box::new(file) as Box<dyn Read + Send>);
    ingest::read_header(&mut records, &input.path)?;
    let mut batch = Vec::with_capacity(chunk);
    let mut count = 0;
    while count < limit {
        let record = match ingest::next_record(&mut records, &input.path) {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return Ok(());
            }
        };
        count += 1;
        let message = match record {
            Record::Fields { fields, .. } => encode(&fields, format)?,
            // Sent on as read: a CSV stream rejects it for the same reason;
            // a JSON stream dead-letters it as `bad_json`, so say why here.
            Record::Broken { line, reason, .. } => {
                if format == InputFormat::Json {
                    tracing::warn!(
                        "`{}` line {line}: {} record sent as raw bytes",
                        input.path,
                        reason.as_str()
                    );
                }
                (Vec::new(), records.last_raw().to_vec())
            }
        };
        batch.push(message);
        if batch.len() == chunk && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
    Ok(())
}

/// One record as a message keyed by its `id` field.
fn encode(record: &[String], format: InputFormat) -> anyhow::Result<Keyed> {
    let key = record.get(1).map_or("", |id| id.trim()).as_bytes().to_vec();
    let payload = match format {
        InputFormat::Json => {
            // A short (ragged) record leaves fields out, as a dict would.
            let mut object = serde_json::Map::new();
            for (name, value) in RAW_FIELDS.iter().zip(record) {
                object.insert((*name).to_string(), value.as_str().into());
            }
            if record.len() > RAW_FIELDS.len() {
                let extra: Vec<&str> = record[RAW_FIELDS.len()..]
                    .iter()
                    .map(String::as_str)
                    .collect();
                object.insert(EXTRA_FIELDS.into(), extra.into());
            }
            serde_json::to_vec(&object)?
        }
        InputFormat::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            writer.write_record(record)?;
            let mut line = writer.into_inner()?;
            line.pop();
            line
        }
    };
    Ok((key, payload))
}
