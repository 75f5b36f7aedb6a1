//! `adlens stream`: consumes campaign records from Kafka in micro-batches,
//! cleans each with `sql/preprocess.sql`, scores it against the LATEST model
//! and produces one result per record (refused ones to the dead-letter topic).
//!
//! Three micro-batches are in hand while the input is backlogged: a task of
//! its own receives and decodes the next one, the one before is cleaned on
//! the runtime's workers (and, with a frozen model, scored), and this task
//! produces and writes the oldest (see [`Stream::run`]).
//!
//! With `--online` the topics evolve with the stream instead
//! ([`crate::model::online`]): seeded from `LATEST`, updated by every
//! micro-batch, saved at every checkpoint and resumed on restart.
//!
//! Delivery is at-least-once: offsets are committed only at a checkpoint,
//! after every result before it was acknowledged by the broker and the
//! Parquet files holding them were closed. A crash replays what came after
//! the last checkpoint, so a consumer may see a result twice, never zero times.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{Array, AsArray};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;

use crate::cli::StreamArgs;
use crate::engine;
use crate::error::Error;
use crate::kafka::{self, InFlight, LogContext, StreamContext};
use crate::model::Model;
use crate::model::online::{EventKind, TopicEvent};
use crate::reject::RejectReason;
use crate::stream::checkpoint::{Checkpoint, OnlineState};
use crate::stream::decode::{self, Envelope};
use crate::stream::receive::{self, Received, Receiving};
use crate::stream::status::{Status, Totals};
use crate::stream::tables::{Refusal, StreamTables};
use crate::stream::watch::ModelWatch;
use crate::stream::{self, Cleaner, DeadLetter, Refused, ResultRecord, Scored};

pub async fn run(args: &StreamArgs, progress: bool) -> anyhow::Result<()> {
    let model = Model::load_latest(&args.models)
        .with_context(|| format!("loading the latest model of `{}`", args.models.display()))?;
    let stop = stop_flag()?;
    let mut stream = Stream::start(args, model, progress)?;
    let result = stream.run(&stop).await;
    // Whatever happened, close the Parquet files; commit only on success.
    let closed = stream.close(result.is_ok(), &stop).await;
    result.and(closed)
}

/// Set on SIGINT or SIGTERM: the current micro-batch is finished, committed
/// and the process exits cleanly.
fn stop_flag() -> std::io::Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = Arc::new(AtomicBool::new(false));
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let set = Arc::clone(&flag);
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        set.store(true, Ordering::SeqCst);
    });
    Ok(flag)
}

/// A micro-batch collected and decoded, its cleaning under way.
struct Pending {
    messages: Vec<Envelope>,
    decoded: decode::Decoded,
    started: Instant,
    cleaning: tokio::task::JoinHandle<Cleaned>,
}

/// What the background task made of a micro-batch: its cleaned rows and,
/// with a frozen model, their scores and the model that gave them.
struct Cleaned {
    rows: datafusion::error::Result<Vec<arrow::array::RecordBatch>>,
    scored: Option<(Arc<Model>, Scoring)>,
}

/// Scored rows and refused records of a micro-batch.
type Scoring = anyhow::Result<(Vec<Scored>, Vec<Refused>)>;

/// A result ready to produce: key, JSON payload, cluster.
type Produced = (Vec<u8>, Vec<u8>, u32);

/// How long the loop waits for the next micro-batch before it treats the
/// input as quiet ([`Stream::quiet`]): longer than a backlogged receive
/// takes to hand over the next batch, short against `--max-batch-ms`.
const QUIET: Duration = Duration::from_millis(50);

/// Results in flight past which the loop waits for their acknowledgements
/// before the next checkpoint is due, bounding the memory they hold.
const MAX_IN_FLIGHT: usize = 200_000;

struct Stream<'a> {
    args: &'a StreamArgs,
    consumer: Arc<StreamConsumer<StreamContext>>,
    producer: FutureProducer<LogContext>,
    cleaner: Cleaner,
    model: Arc<Model>,
    /// Label per cluster (online: per topic, as of its last micro-batch).
    labels: HashMap<u32, String>,
    /// `--online`: the topics, shared with the checkpoint that saves them.
    online: Option<OnlineState>,
    /// Topic events not written yet.
    events: Vec<TopicEvent>,
    watch: ModelWatch,
    /// Finished micro-batches not yet committed (shared with the revoke hook).
    done: Checkpoint,
    last_checkpoint: Instant,
    last_record: Option<Instant>,
    totals: Totals,
    status: Status,
    progress: bool,
}

/// The consumer of `--input-topic` in `--group` (offsets committed by
/// adlens only, at checkpoints) and the producer of results.
fn clients(
    args: &StreamArgs,
) -> anyhow::Result<(StreamConsumer<StreamContext>, FutureProducer<LogContext>)> {
    let kafka_error = |e: rdkafka::error::KafkaError| Error::Kafka {
        topic: args.input_topic.clone(),
        message: e.to_string(),
    };
    let consumer: StreamConsumer<StreamContext> = kafka::client_config(
        &args.kafka.brokers,
        &[
            ("group.id", args.group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "5000"),
        ],
        &args.kafka.settings,
    )
    .create_with_context(StreamContext::new(args.from))
    .map_err(kafka_error)?;
    consumer
        .subscribe(&[&args.input_topic])
        .map_err(kafka_error)?;
    let producer: FutureProducer<LogContext> = kafka::client_config(
        &args.kafka.brokers,
        &kafka::PRODUCER_DEFAULTS,
        &args.kafka.settings,
    )
    .create_with_context(LogContext)
    .map_err(kafka_error)?;
    Ok((consumer, producer))
}

/// Commits what is finished while revoked partitions are still ours, so
/// their next owner starts after it instead of replaying it.
fn commit_before_revoke(
    consumer: &StreamConsumer<StreamContext>,
    done: Checkpoint,
    producer: FutureProducer<LogContext>,
) {
    consumer
        .context()
        .before_revoke(Box::new(move |consumer, revoked| {
            tracing::info!(
                "committing finished work before {} partitions are revoked",
                revoked.count()
            );
            if let Err(e) = done.commit_on_revoke(consumer, &producer) {
                tracing::error!("{e:#}; the next owner replays from the last commit");
            }
        }));
}

impl<'a> Stream<'a> {
    fn start(args: &'a StreamArgs, model: Model, progress: bool) -> anyhow::Result<Self> {
        let (consumer, producer) = clients(args)?;
        let process = format!(
            "part-{}-{}",
            chrono::Utc::now().timestamp_millis(),
            std::process::id()
        );
        let tables = StreamTables::open(&args.data, &process, args.window_secs)
            .with_context(|| format!("opening the tables under `{}`", args.data.display()))?;
        let mut done = Checkpoint::new(&args.input_topic, tables);
        let (online, seed_events) = if args.online.online {
            let (state, events) = OnlineState::open(&args.data, args.online.params(), &model)?;
            done = done.with_online(state.clone());
            (Some(state), events)
        } else {
            (None, Vec::new())
        };
        commit_before_revoke(&consumer, done.clone(), producer.clone());
        let watch = ModelWatch::new(
            &args.models,
            &model.meta.version,
            Duration::from_millis(args.model_poll_ms),
        );
        let partitions = args.partitions.unwrap_or_else(engine::default_partitions);
        let mut stream = Self {
            args,
            consumer: Arc::new(consumer),
            producer,
            cleaner: Cleaner::new(partitions)?,
            model: Arc::new(model.clone()),
            labels: HashMap::new(),
            online,
            events: seed_events,
            watch,
            done,
            last_checkpoint: Instant::now(),
            last_record: None,
            totals: Totals::default(),
            status: Status::new(args.status_secs),
            progress,
        };
        stream.serve(model);
        Ok(stream)
    }

    /// Puts `model` in service: results from now on carry its version. With
    /// `--online`, a model newer than the topics' seed re-seeds them (the
    /// documented rule: its clusters are born under new ids, every living
    /// topic dies).
    fn serve(&mut self, model: Model) {
        if let Some(online) = &self.online {
            let events = {
                let mut topics = online.lock();
                if topics.seeded_from.as_deref() == Some(model.meta.version.as_str()) {
                    Vec::new()
                } else {
                    tracing::info!(
                        "re-seeding the online topics from model `{}`",
                        model.meta.version
                    );
                    topics.reseed(&model, chrono::Utc::now().timestamp_micros())
                }
            };
            self.record_events(events);
        } else {
            self.labels = stream::cluster_labels(&model);
        }
        if self.progress {
            match &self.online {
                Some(online) => {
                    let topics = online.lock();
                    eprintln!(
                        "stream: online topics from model {}: {} alive after {} micro-batches",
                        model.meta.version,
                        topics.alive(),
                        topics.batches()
                    );
                }
                None => eprintln!(
                    "stream: scoring with model {} (k={})",
                    model.meta.version, model.meta.k
                ),
            }
        }
        self.totals.models.push(model.meta.version.clone());
        self.model = Arc::new(model);
    }

    /// The loop, three micro-batches deep: while one is produced and written
    /// on this task, the next one is already being cleaned (and, with a
    /// frozen model, scored) on the runtime's workers, and the one after is
    /// being received ([`receive`]). A micro-batch that did not fill up (the
    /// input is not backlogged) is finished at once, so pipelining never
    /// adds latency.
    async fn run(&mut self, stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
        let mut receiving = Receiving::start(
            Arc::clone(&self.consumer),
            self.batching(),
            Arc::clone(stop),
        );
        let mut cleaning: Option<Pending> = None;
        loop {
            if let Some(model) = self.watch.poll() {
                self.serve(model);
            }
            if stop.load(Ordering::SeqCst) || self.idle() {
                break;
            }
            let next = match tokio::time::timeout(QUIET, receiving.next()).await {
                Ok(next) => next,
                Err(_) => {
                    self.quiet(cleaning.take(), stop).await?;
                    receiving.next().await
                }
            };
            let Some(received) = next.context("the receiving task")? else {
                break;
            };
            let full = received.full;
            let next = (!received.messages.is_empty()).then(|| self.prepare(received));
            if let Some(previous) = cleaning.take() {
                self.finish(previous).await?;
            }
            cleaning = next;
            if !full && let Some(last) = cleaning.take() {
                self.finish(last).await?;
            }
            if self.last_checkpoint.elapsed() >= Duration::from_millis(self.args.checkpoint_ms) {
                self.checkpoint(stop).await?;
            } else if self.done.in_flight() >= MAX_IN_FLIGHT {
                self.settle(stop).await?;
            }
            if self.progress && self.status.due() {
                self.status.print(
                    &self.totals,
                    self.consumer.context().lag(),
                    &self.model.meta.version,
                );
            }
        }
        match cleaning {
            Some(last) => self.finish(last).await,
            None => Ok(()),
        }
    }

    /// The input went quiet (no micro-batch within [`QUIET`]): finishes the
    /// one pending and awaits the acknowledgements in flight now, rather
    /// than holding them until more input or the next checkpoint. So a
    /// drained backlog's last results are out at once, and the summary's
    /// end time is when they were acknowledged, not when `--idle-exit`
    /// noticed the input was idle (which added up to its seconds).
    async fn quiet(&mut self, pending: Option<Pending>, stop: &AtomicBool) -> anyhow::Result<()> {
        if let Some(pending) = pending {
            self.finish(pending).await?;
        }
        if self.done.in_flight() > 0 {
            self.settle(stop).await?;
        }
        Ok(())
    }

    /// How micro-batches are cut, from the arguments.
    fn batching(&self) -> receive::Batching {
        let args = self.args;
        receive::Batching {
            topic: args.input_topic.clone(),
            format: args.format,
            max_records: args.max_batch_records,
            max_bytes: args.max_batch_bytes,
            max_wait: Duration::from_millis(args.max_batch_ms),
            total: args.max_records,
            max_message_bytes: args.max_message_bytes,
            dead_letter_bytes: args.dead_letter_payload_bytes,
        }
    }

    /// True once `--idle-exit` seconds passed without a record since the
    /// later of the last record and the last partition assignment.
    fn idle(&self) -> bool {
        let (Some(idle), Some(assigned)) =
            (self.args.idle_exit, self.consumer.context().assigned_at())
        else {
            return false;
        };
        let since = self.last_record.map_or(assigned, |r| r.max(assigned));
        since.elapsed() >= Duration::from_secs(idle)
    }

    /// Starts cleaning a received micro-batch in the background.
    fn prepare(&mut self, received: Received) -> Pending {
        let Received {
            messages,
            decoded,
            first_at,
            ..
        } = received;
        let started = Instant::now();
        self.last_record = Some(started);
        self.totals
            .first_record
            .get_or_insert(first_at.unwrap_or(started));
        self.totals.consumed += messages.len() as u64;
        let cleaner = self.cleaner.clone();
        let raw = decoded.raw.clone();
        // A frozen model scores in the background too: it holds no state a
        // micro-batch changes, and scoring on this task left a core idle
        // (the loop waited ~120 ms per 20k records for it, then did the rest
        // of the micro-batch's work alone). Online topics change with every
        // micro-batch, so they score in order, in `finish`.
        let model = self.online.is_none().then(|| Arc::clone(&self.model));
        let cleaning = tokio::spawn(async move {
            let rows = cleaner.clean(raw).await;
            let scored = match (&rows, model) {
                (Ok(rows), Some(model)) => {
                    let scoring = score_frozen(Arc::clone(&model), rows.clone()).await;
                    Some((model, scoring))
                }
                _ => None,
            };
            Cleaned { rows, scored }
        });
        Pending {
            messages,
            decoded,
            started,
            cleaning,
        }
    }

    /// Scores and produces a cleaned micro-batch, then stages its rows in the
    /// Parquet tables and its offsets for the next commit.
    async fn finish(&mut self, pending: Pending) -> anyhow::Result<()> {
        let Pending {
            messages,
            decoded,
            started,
            cleaning,
        } = pending;
        let Cleaned { rows, scored } = cleaning.await.context("the cleaning task")?;
        let scoring = match rows {
            // Scored by the model still in service: a model swapped in since
            // (see `serve`) scores the rows again, so results carry the
            // version that scored them.
            Ok(_)
                if let Some((model, scoring)) = scored
                    && Arc::ptr_eq(&model, &self.model) =>
            {
                scoring
            }
            Ok(cleaned) => self.score(cleaned).await,
            Err(e) => Err(anyhow::Error::new(e).context("cleaning")),
        };
        let (scored, refused) = match scoring {
            Ok(done) => done,
            Err(e) => self.one_by_one(&decoded.raw, &e).await?,
        };
        let now = chrono::Utc::now();
        let now_text = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let results = self.results(&scored, &now_text)?;
        let mut refusals: Vec<Refusal<'_>> = decoded
            .rejected
            .iter()
            .map(|r| Refusal {
                message: &messages[r.index],
                reason: r.reason,
                detail: &r.detail,
            })
            .collect();
        refusals.extend(refused.iter().map(|r| Refusal {
            message: &messages[r.index],
            reason: r.reason,
            detail: &r.detail,
        }));
        let dead = self.dead_letters(&refusals, &now_text)?;
        let scored_count = results.len() as u64;
        let flight = self.send(results, &refusals, dead).await?;
        self.write_events().await?;

        let micros = now.timestamp_micros();
        let version = &self.version();
        let offsets = messages.iter().map(|m| (m.partition, m.offset));
        self.done.finish(offsets, flight, |tables| {
            for s in &scored {
                tables.append_scored(s, &messages, version, micros)?;
            }
            tables.append_refused(&refusals, micros)
        })?;
        let totals = &mut self.totals;
        totals.scored += scored_count;
        totals.dead_lettered += refusals.len() as u64;
        totals.outliers += scored
            .iter()
            .map(|s| s.outlier.iter().filter(|o| **o).count() as u64)
            .sum::<u64>();
        totals
            .latencies_ms
            .push(started.elapsed().as_secs_f64() * 1000.0);
        Ok(())
    }

    /// Scores cleaned records (on a blocking thread: it is all CPU); online,
    /// updates the topics with them and records the births and deaths.
    async fn score(
        &mut self,
        cleaned: Vec<arrow::array::RecordBatch>,
    ) -> anyhow::Result<(Vec<Scored>, Vec<Refused>)> {
        let model = Arc::clone(&self.model);
        let Some(online) = self.online.clone() else {
            return score_frozen(model, cleaned).await;
        };
        let now = chrono::Utc::now().timestamp_micros();
        let (scored, refused, assignment) = tokio::task::spawn_blocking(move || {
            stream::score_online(&mut online.lock(), &model, &cleaned, now)
        })
        .await??;
        tracing::debug!(sweeps = assignment.sweeps, "online topics updated");
        self.labels.extend(assignment.labels);
        self.record_events(assignment.events);
        Ok((scored, refused))
    }

    /// Keeps topic events for [`Self::write_events`].
    fn record_events(&mut self, events: Vec<TopicEvent>) {
        for e in events.iter().filter(|e| e.event == EventKind::Died) {
            self.labels.remove(&e.topic);
        }
        self.events.extend(events);
    }

    /// Writes the topic events kept so far to `topic_events/` (made durable
    /// by the next checkpoint) and, with `--topic-events-topic`, sends them.
    async fn write_events(&mut self) -> anyhow::Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.events);
        let version = self.version();
        let now = chrono::Utc::now();
        self.done.finish([], InFlight::default(), |tables| {
            tables.append_events(&events, &version, now.timestamp_micros())
        })?;
        let Some(topic) = &self.args.online.topic_events_topic else {
            return Ok(());
        };
        let now = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut flight = InFlight::default();
        for event in &events {
            let payload = serde_json::to_vec(&EventRecord {
                event,
                model_version: &version,
                event_time: &now,
            })?;
            let key = event.topic.to_string().into_bytes();
            flight
                .send(&self.producer, topic, Some(key), payload)
                .await?;
        }
        self.done.add_in_flight(flight);
        Ok(())
    }

    /// What results carry as `model_version`: the model's, or with
    /// `--online` `online:` and the version the topics were seeded from.
    fn version(&self) -> String {
        match &self.online {
            Some(online) => format!(
                "online:{}",
                online.lock().seeded_from.as_deref().unwrap_or("none")
            ),
            None => self.model.meta.version.clone(),
        }
    }

    /// Cleans and scores decoded records.
    async fn clean_and_score(
        &mut self,
        raw: arrow::array::RecordBatch,
    ) -> anyhow::Result<(Vec<Scored>, Vec<Refused>)> {
        let cleaned = self.cleaner.clean(raw).await.context("cleaning")?;
        self.score(cleaned).await
    }

    /// After a micro-batch failed as a whole: each record on its own, so the
    /// ones that fail are dead-lettered (`rule_failed`) and the stream goes on
    /// instead of dying and replaying the same batch forever.
    async fn one_by_one(
        &mut self,
        raw: &arrow::array::RecordBatch,
        failure: &anyhow::Error,
    ) -> anyhow::Result<(Vec<Scored>, Vec<Refused>)> {
        tracing::warn!(
            "a micro-batch failed ({failure:#}); retrying its {} records one by one",
            raw.num_rows()
        );
        let lines = raw
            .column_by_name("source_line")
            .context("no `source_line`")?
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        let (mut scored, mut refused) = (Vec::new(), Vec::new());
        for row in 0..raw.num_rows() {
            match self.clean_and_score(raw.slice(row, 1)).await {
                Ok((s, r)) => {
                    scored.extend(s);
                    refused.extend(r);
                }
                Err(e) => refused.push(Refused {
                    index: lines.value(row) as usize,
                    reason: RejectReason::RuleFailed,
                    detail: format!("{e:#}"),
                }),
            }
        }
        Ok((scored, refused))
    }

    /// `(key, JSON, cluster)` of each scored record.
    fn results(&self, scored: &[Scored], now: &str) -> anyhow::Result<Vec<Produced>> {
        let mut out = Vec::new();
        let version = self.version();
        for s in scored {
            let domains = arrow::compute::cast(
                s.rows
                    .column_by_name("domain")
                    .context("no `domain` column")?,
                &arrow::datatypes::DataType::Utf8,
            )?;
            let domains = domains.as_string::<i32>();
            for i in 0..s.campaign_id.len() {
                let cluster = s.cluster[i];
                let record = ResultRecord {
                    campaign_id: s.campaign_id[i],
                    created_at: stream::format_micros(s.created_at[i]),
                    cluster,
                    cluster_label: self.labels.get(&cluster).map_or("", String::as_str),
                    distance: s.distance[i],
                    outlier: s.outlier[i],
                    domain: domains.is_valid(i).then(|| domains.value(i)),
                    model_version: &version,
                    processed_at: now,
                };
                let key = s.campaign_id[i].to_string().into_bytes();
                out.push((key, serde_json::to_vec(&record)?, cluster));
            }
        }
        Ok(out)
    }

    fn dead_letters(&self, refusals: &[Refusal<'_>], now: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        refusals
            .iter()
            .map(|r| {
                let limit = self.args.dead_letter_payload_bytes;
                let bytes = &r.message.payload;
                let payload = String::from_utf8_lossy(&bytes[..bytes.len().min(limit)]);
                Ok(serde_json::to_vec(&DeadLetter {
                    reason: r.reason,
                    detail: r.detail,
                    topic: &self.args.input_topic,
                    partition: r.message.partition,
                    offset: r.message.offset,
                    payload: &payload,
                    payload_truncated: r.message.size > limit,
                    payload_bytes: r.message.size,
                    processed_at: now,
                })?)
            })
            .collect()
    }

    /// Hands results (and copies to per-cluster topics) and dead letters to
    /// the producer without waiting for the broker: their acknowledgements
    /// are awaited at the next checkpoint ([`Self::settle`]).
    async fn send(
        &self,
        results: Vec<Produced>,
        refusals: &[Refusal<'_>],
        dead: Vec<Vec<u8>>,
    ) -> anyhow::Result<InFlight> {
        let mut flight = InFlight::default();
        for (key, payload, cluster) in results {
            if let Some(prefix) = &self.args.topic_per_cluster {
                let topic = format!("{prefix}{cluster}");
                flight
                    .send(&self.producer, &topic, Some(key.clone()), payload.clone())
                    .await?;
            }
            flight
                .send(&self.producer, &self.args.output_topic, Some(key), payload)
                .await?;
        }
        for (r, payload) in refusals.iter().zip(dead) {
            let topic = &self.args.dead_letter_topic;
            flight
                .send(&self.producer, topic, r.message.key.clone(), payload)
                .await?;
        }
        Ok(flight)
    }

    /// Waits until the broker acknowledged every result sent so far; failed
    /// ones are sent again until they are in (see [`InFlight::settle`]).
    async fn settle(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut flight = self.done.take_in_flight();
        let acknowledging = !flight.is_empty();
        let settled = flight.settle(&self.producer, stop).await;
        // Whatever is still out stays for the next try (or for no commit).
        self.done.add_in_flight(flight);
        settled?;
        // The summary's end: when the last results were acknowledged, not
        // a later checkpoint with nothing to wait for.
        if acknowledging {
            self.totals.last_done = Some(Instant::now());
        }
        Ok(())
    }

    /// Awaits every acknowledgement, closes the Parquet files, then commits
    /// the offsets of everything before: the output topics and both sinks
    /// hold every record up to the committed offsets.
    async fn checkpoint(&mut self, stop: &AtomicBool) -> anyhow::Result<()> {
        self.settle(stop).await?;
        self.last_checkpoint = Instant::now();
        self.done.commit(&*self.consumer, Some(&self.owned()))
    }

    /// The input partitions this process owns now: a commit for one a
    /// rebalance moved away would be refused, and its new owner replays it.
    fn owned(&self) -> HashSet<i32> {
        self.consumer
            .context()
            .assignment()
            .into_iter()
            .filter(|(t, _)| *t == self.args.input_topic)
            .map(|(_, p)| p)
            .collect()
    }

    /// Final checkpoint (commit only when the run succeeded) and summary.
    async fn close(&mut self, succeeded: bool, stop: &AtomicBool) -> anyhow::Result<()> {
        let closed = if succeeded {
            match self.write_events().await {
                Ok(()) => self.checkpoint(stop).await,
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        let closed = closed.and(self.done.close(succeeded));
        // Nothing was acknowledged here (a revoke did it, or nothing was
        // sent): the run's end is now.
        if self.totals.consumed > 0 && self.totals.last_done.is_none() {
            self.totals.last_done = Some(Instant::now());
        }
        if self.progress {
            eprintln!("{}", self.totals.summary());
        }
        closed
    }
}

/// A topic event as sent to `--topic-events-topic`.
#[derive(Debug, serde::Serialize)]
struct EventRecord<'a> {
    #[serde(flatten)]
    event: &'a TopicEvent,
    model_version: &'a str,
    event_time: &'a str,
}

/// Scores cleaned records with a frozen model, on a blocking thread (it is
/// all CPU): in the background task (`prepare`) or, after a model swap, in
/// `finish`.
async fn score_frozen(model: Arc<Model>, cleaned: Vec<arrow::array::RecordBatch>) -> Scoring {
    tokio::task::spawn_blocking(move || stream::score(&model, &cleaned)).await?
}
