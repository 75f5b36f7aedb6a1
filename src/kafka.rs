//! Kafka plumbing shared by `adlens stream` and `adlens produce`: client
//! configuration (with `-X key=value` pass-through for SASL/TLS), the
//! consumer context that tracks assignment, start position and lag, and
//! producing records, either waiting for every acknowledgement or keeping
//! them in flight until a checkpoint ([`InFlight`]).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message};

use crate::error::Error;

/// Parses one `-X key=value` librdkafka setting.
pub fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}

/// A client configuration for `brokers` with the user's settings applied
/// last, so they can override any default adlens picks.
pub fn client_config(
    brokers: &str,
    defaults: &[(&str, &str)],
    extra: &[(String, String)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in extra {
        config.set(k, v);
    }
    config.set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// Producer settings adlens starts from: every in-sync replica acknowledges
/// a record, and records are batched for throughput.
pub const PRODUCER_DEFAULTS: [(&str, &str); 4] = [
    ("acks", "all"),
    ("linger.ms", "20"),
    ("batch.num.messages", "10000"),
    ("queue.buffering.max.messages", "500000"),
];

/// Where a consumer starts in partitions it is newly assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartFrom {
    /// The group's committed offsets (the beginning where there are none).
    Committed,
    /// The beginning of each partition, whatever was committed.
    Earliest,
    /// Only records produced from now on.
    Latest,
}

/// Consumer callbacks: logs rebalances, applies `--from` to partitions
/// without a committed offset, remembers when partitions were last assigned
/// (`--idle-exit` counts from there) and the lag librdkafka reports, and
/// runs the owner's [`BeforeRevoke`] hook before partitions are taken away.
pub struct StreamContext {
    from: StartFrom,
    assigned_at: Mutex<Option<Instant>>,
    assignment: Mutex<Vec<(String, i32)>>,
    lag: AtomicI64,
    before_revoke: OnceLock<BeforeRevoke>,
}

/// Called inside the rebalance callback with the partitions about to be
/// revoked, while this consumer still owns them (so it may commit them).
pub type BeforeRevoke =
    Box<dyn Fn(&BaseConsumer<StreamContext>, &TopicPartitionList) + Send + Sync>;

impl std::fmt::Debug for StreamContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamContext")
            .field("from", &self.from)
            .field("assignment", &self.assignment)
            .field("lag", &self.lag)
            .finish_non_exhaustive()
    }
}

impl StreamContext {
    pub fn new(from: StartFrom) -> Self {
        Self {
            from,
            assigned_at: Mutex::default(),
            assignment: Mutex::default(),
            lag: AtomicI64::new(-1),
            before_revoke: OnceLock::new(),
        }
    }

    /// Installs the hook run before partitions are revoked (once).
    pub fn before_revoke(&self, hook: BeforeRevoke) {
        if self.before_revoke.set(hook).is_err() {
            tracing::warn!("a revoke hook was already installed");
        }
    }

    /// When partitions were last assigned, if ever.
    pub fn assigned_at(&self) -> Option<Instant> {
        *self.assigned_at.lock().expect("poisoned")
    }

    /// The partitions this process owns now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.assignment.lock().expect("poisoned").clone()
    }

    /// Records behind the end of the owned partitions (-1 until known).
    pub fn lag(&self) -> i64 {
        self.lag.load(Ordering::Relaxed)
    }

    /// Applies `--from` to the assigned partitions the group has no
    /// committed offset for; the others resume where the group is, so a
    /// restart or a process joining the group never skips a backlog.
    fn start_positions(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let offset = match self.from {
            StartFrom::Committed => return,
            StartFrom::Earliest => Offset::Beginning,
            StartFrom::Latest => Offset::End,
        };
        let committed = match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!("cannot read committed offsets ({e}); `--from` not applied");
                return;
            }
        };
        for element in committed.elements() {
            if element.offset() != Offset::Invalid {
                continue;
            }
            let (topic, partition) = (element.topic(), element.partition());
            if let Err(e) = tpl.set_partition_offset(topic, partition, offset) {
                tracing::warn!("cannot start `{topic}` [{partition}] at {offset:?}: {e}");
            }
        }
    }

    fn record_assignment(&self, consumer: &BaseConsumer<Self>) {
        let owned: Vec<(String, i32)> = consumer
            .assignment()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect()
            })
            .unwrap_or_default();
        tracing::info!("assigned partitions: {}", describe(&owned));
        *self.assignment.lock().expect("poisoned") = owned;
        *self.assigned_at.lock().expect("poisoned") = Some(Instant::now());
    }
}

/// `topic[0,1,2]` style list of partitions.
pub fn describe(partitions: &[(String, i32)]) -> String {
    if partitions.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<String> = partitions
        .iter()
        .map(|(t, p)| format!("{t}[{p}]"))
        .collect();
    parts.sort();
    parts.join(", ")
}

impl ClientContext for StreamContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_to_tracing(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker outages show up here; librdkafka keeps retrying by itself.
        tracing::warn!("kafka: {error}: {reason}");
    }

    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        self.lag.store(lag, Ordering::Relaxed);
    }
}

impl ConsumerContext for StreamContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.start_positions(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!("partitions revoked: {}", tpl.count());
                if let Some(hook) = self.before_revoke.get() {
                    hook(consumer, tpl);
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                tracing::warn!("rebalance failed: {code}");
                // librdkafka requires an unassign after a failed rebalance.
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!("applying the rebalance failed: {e}");
        }
        self.record_assignment(consumer);
    }
}

/// A context for producers and admin clients: librdkafka's log to tracing.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogContext;

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_to_tracing(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!("kafka: {error}: {reason}");
    }
}

fn log_to_tracing(level: RDKafkaLogLevel, fac: &str, message: &str) {
    // `-X` settings go to the consumer and the producer alike; librdkafka
    // warns about the half each one ignores, which is expected here.
    let level = if fac == "CONFWARN" && message.contains("will be ignored") {
        RDKafkaLogLevel::Debug
    } else {
        level
    };
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!("librdkafka {fac}: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!("librdkafka {fac}: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!("librdkafka {fac}: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!("librdkafka {fac}: {message}"),
    }
}

/// One record to produce.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// Produces every record and waits until the broker acknowledged each one.
/// A full local queue is waited out, not treated as an error; any record
/// librdkafka finally gives up on fails the whole call, naming its topic.
pub async fn produce_all(
    producer: &FutureProducer<LogContext>,
    records: impl IntoIterator<Item = Outgoing<'_>>,
) -> Result<usize, Error> {
    let mut pending: Vec<(DeliveryFuture, String)> = Vec::new();
    for record in records {
        let delivery = send(producer, &record).await?;
        pending.push((delivery, record.topic.to_string()));
    }
    let count = pending.len();
    let (deliveries, topics): (Vec<DeliveryFuture>, Vec<String>) = pending.into_iter().unzip();
    for (result, topic) in join_all(deliveries).await.into_iter().zip(topics) {
        delivered(&topic, result)?;
    }
    Ok(count)
}

/// Hands one record to the producer's queue (waiting while it is full) and
/// returns the future of its acknowledgement.
pub async fn send(
    producer: &FutureProducer<LogContext>,
    record: &Outgoing<'_>,
) -> Result<DeliveryFuture, Error> {
    let mut future = FutureRecord::to(record.topic).payload(record.payload);
    if let Some(key) = record.key {
        future = future.key(key);
    }
    loop {
        match producer.send_result(future) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                future = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(delivery_error(record.topic, &e)),
        }
    }
}

/// The outcome of one delivery future, as an adlens error naming the topic.
fn delivered(
    topic: &str,
    result: <DeliveryFuture as std::future::Future>::Output,
) -> Result<(), Error> {
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(delivery_error(topic, &e)),
        Err(_) => Err(delivery_error(topic, &KafkaError::Canceled)),
    }
}

/// Records handed to the producer whose acknowledgements are not in yet,
/// kept whole so a failed one can be sent again. Awaiting acknowledgements
/// only before offsets are committed (as Arroyo's Kafka sink does), not
/// after every micro-batch, lets the next micro-batch be cleaned while the
/// broker acknowledges the last one.
#[derive(Default)]
pub struct InFlight {
    sent: Vec<(Sent, DeliveryFuture)>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("records", &self.sent.len())
            .finish()
    }
}

struct Sent {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl InFlight {
    /// Records not yet acknowledged.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Takes over `other`'s records.
    pub fn extend(&mut self, other: InFlight) {
        self.sent.extend(other.sent);
    }

    /// Sends one record and keeps it until [`Self::settle`].
    pub async fn send(
        &mut self,
        producer: &FutureProducer<LogContext>,
        topic: &str,
        key: Option<Vec<u8>>,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        let record = Outgoing {
            topic,
            key: key.as_deref(),
            payload: &payload,
        };
        let delivery = send(producer, &record).await?;
        let sent = Sent {
            topic: topic.to_string(),
            key,
            payload,
        };
        self.sent.push((sent, delivery));
        Ok(())
    }

    /// Waits for every acknowledgement; records that failed are sent again
    /// after a growing pause (they may then arrive twice, as at-least-once
    /// allows) until all are in, or `stop` is set and the error is returned.
    pub async fn settle(
        &mut self,
        producer: &FutureProducer<LogContext>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<(), Error> {
        let mut pause = Duration::from_millis(100);
        loop {
            let mut failed = self.failures().await;
            if failed.is_empty() {
                return Ok(());
            }
            if stop.load(Ordering::SeqCst) {
                return Err(failed.swap_remove(0).0);
            }
            tracing::warn!(
                "{}; sending {} records again in {} ms",
                failed[0].0,
                failed.len(),
                pause.as_millis()
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
            for (_, sent) in failed {
                self.send(producer, &sent.topic, sent.key, sent.payload)
                    .await?;
            }
        }
    }

    /// Awaits every record in flight; returns the failed ones with their error.
    async fn failures(&mut self) -> Vec<(Error, Sent)> {
        let mut failed = Vec::new();
        for (record, delivery) in std::mem::take(&mut self.sent) {
            if let Err(e) = delivered(&record.topic, delivery.await) {
                failed.push((e, record));
            }
        }
        failed
    }

    /// After the producer was flushed: true when every record in flight was
    /// acknowledged (they are then forgotten), false when one failed or is
    /// still out (they stay, to be settled later). Synchronous, for the
    /// rebalance callback.
    pub fn acknowledged(&mut self) -> bool {
        use futures::FutureExt;
        let mut all = true;
        let mut left = Vec::new();
        for (record, mut delivery) in std::mem::take(&mut self.sent) {
            match (&mut delivery).now_or_never() {
                Some(Ok(Ok(_))) => {}
                // A failed one is kept with a delivery that never resolves
                // Ok, so the loop's settle sends it again.
                _ => {
                    all = false;
                    left.push((record, delivery));
                }
            }
        }
        self.sent = left;
        all
    }
}

fn delivery_error(topic: &str, e: &KafkaError) -> Error {
    Error::Kafka {
        topic: topic.to_string(),
        message: format!("delivery failed: {e}"),
    }
}

/// The payload of a message as bytes (empty for a tombstone).
pub fn payload<M: Message>(message: &M) -> &[u8] {
    message.payload().unwrap_or_default()
}
