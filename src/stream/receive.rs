//! The receiving side of `adlens stream`: a task of its own fills
//! micro-batches from the consumer and decodes them while the stream's loop
//! finishes the ones before (produces, writes the tables).
//!
//! Why a task: receiving is one `recv` per message, with the copy out of
//! librdkafka's buffers, and the loop did it between micro-batches: 4.1 s of
//! a 12.2 s backlogged run of 1M records. Handed over through a channel of
//! one, at most two micro-batches wait here, so memory stays bounded. A
//! batch taken from a partition revoked meanwhile is still processed here
//! and replayed by the partition's new owner (at-least-once: this process
//! commits only partitions it owns, see `Checkpoint::commit`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use tokio::sync::mpsc;

use crate::kafka::{self, StreamContext};
use crate::stream::decode::{self, Decoded, Envelope, InputFormat};

/// How the receiving task cuts micro-batches (from the stream's arguments).
#[derive(Debug, Clone)]
pub struct Batching {
    pub topic: String,
    pub format: InputFormat,
    /// Records per micro-batch at most.
    pub max_records: usize,
    /// Payload bytes per micro-batch at most.
    pub max_bytes: usize,
    /// Waiting for more records ends after this long.
    pub max_wait: Duration,
    /// Records in all, then the task ends (`--max-records`).
    pub total: Option<u64>,
    /// A message larger than this is only dead-lettered...
    pub max_message_bytes: usize,
    /// ...with this many of its bytes kept.
    pub dead_letter_bytes: usize,
}

/// A received micro-batch, decoded into `raw_campaigns` rows.
#[derive(Debug)]
pub struct Received {
    pub messages: Vec<Envelope>,
    pub decoded: Decoded,
    /// When its first message arrived (`None` when it is empty).
    pub first_at: Option<Instant>,
    /// It stopped at the record limit, not at the deadline: the input is
    /// backlogged, so the loop may keep it waiting behind the next one.
    pub full: bool,
}

/// The receiving task and its output. Dropped, it stops the task: what it
/// received and nobody took is only replayed (it was never committed).
#[derive(Debug)]
pub struct Receiving {
    batches: mpsc::Receiver<Received>,
    task: tokio::task::JoinHandle<()>,
    /// The task's outcome was taken (a handle is awaited once).
    joined: bool,
}

impl Receiving {
    /// Starts receiving. Every `max_wait` at the latest a micro-batch comes
    /// out, empty when nothing arrived, so the loop checks its clocks; the
    /// output ends after `total` records or once `stop` is set.
    pub fn start(
        consumer: Arc<StreamConsumer<StreamContext>>,
        batching: Batching,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let (tx, batches) = mpsc::channel(1);
        let task = tokio::spawn(async move {
            let mut left = batching.total.unwrap_or(u64::MAX);
            while left > 0 && !stop.load(Ordering::SeqCst) {
                let limit = usize::try_from(left)
                    .map_or(batching.max_records, |left| left.min(batching.max_records));
                let received = collect(&consumer, &batching, limit, &stop).await;
                left -= received.messages.len() as u64;
                if tx.send(received).await.is_err() {
                    break;
                }
            }
        });
        Self {
            batches,
            task,
            joined: false,
        }
    }

    /// The next micro-batch; `None` once there will be no more. A task
    /// that panicked is an error here, not a silent end of the input.
    /// Cancel-safe: dropped before it is ready, nothing is lost.
    pub async fn next(&mut self) -> Result<Option<Received>, tokio::task::JoinError> {
        match self.batches.recv().await {
            Some(received) => Ok(Some(received)),
            None if !self.joined => {
                // Marked only once awaited: the loop may drop this future
                // part-way (it waits with a timeout), and the task's panic
                // must not be lost then.
                let outcome = (&mut self.task).await;
                self.joined = true;
                outcome.map(|()| None)
            }
            None => Ok(None),
        }
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits for up to `limit` messages or `max_wait`, whichever is first.
async fn collect(
    consumer: &StreamConsumer<StreamContext>,
    batching: &Batching,
    limit: usize,
    stop: &AtomicBool,
) -> Received {
    let mut messages = Vec::new();
    let mut first_at = None;
    let deadline = tokio::time::Instant::now() + batching.max_wait;
    // One timer for the whole micro-batch, not one per message (a timer
    // and a clock read per message showed in the stream's profile). What
    // was received when the deadline passes stays in `messages`.
    let fill = fill(
        consumer,
        batching,
        &mut messages,
        &mut first_at,
        limit,
        stop,
    );
    let _ = tokio::time::timeout_at(deadline, fill).await;
    let decoded = decode::decode(
        batching.format,
        &batching.topic,
        &messages,
        batching.max_message_bytes,
    );
    Received {
        full: messages.len() >= limit,
        messages,
        decoded,
        first_at,
    }
}

/// Receives into `batch` until `limit` messages, `max_bytes`, a stop or a
/// consumer error.
async fn fill(
    consumer: &StreamConsumer<StreamContext>,
    batching: &Batching,
    batch: &mut Vec<Envelope>,
    first_at: &mut Option<Instant>,
    limit: usize,
    stop: &AtomicBool,
) {
    let mut bytes = 0usize;
    while batch.len() < limit && bytes < batching.max_bytes && !stop.load(Ordering::Relaxed) {
        match consumer.recv().await {
            Ok(m) => {
                first_at.get_or_insert_with(Instant::now);
                // A message over the size limit is only dead-lettered:
                // keep no more of it than a dead letter shows.
                let payload = kafka::payload(&m);
                let keep = if payload.len() > batching.max_message_bytes {
                    &payload[..payload.len().min(batching.dead_letter_bytes)]
                } else {
                    payload
                };
                bytes += keep.len();
                batch.push(Envelope {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: keep.to_vec(),
                    size: payload.len(),
                });
            }
            Err(e) => {
                // Broker gone or partition moved: librdkafka recovers by
                // itself; hand over what we have and try again.
                tracing::warn!("consuming `{}`: {e}", batching.topic);
                tokio::time::sleep(Duration::from_millis(100)).await;
                break;
            }
        }
    }
}
