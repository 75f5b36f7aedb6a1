//! What a checkpoint makes durable: the results produced but not yet
//! acknowledged, the stream's open Parquet tables and, per partition, the
//! next offset they cover. The stream loop fills it; the loop's timer and
//! the consumer's rebalance callback both checkpoint it, so partitions about
//! to be revoked are committed up to the last finished micro-batch and their
//! next owner does not replay it. Offsets are committed only once every
//! result before them was acknowledged. With `--online`, the online topics
//! are saved (atomically, with the offsets they cover) just before the
//! offsets are committed, so a restart resumes the topics of its commit.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::kafka::{InFlight, LogContext};
use crate::model::Model;
use crate::model::online::{OnlineParams, OnlineTopics, TopicEvent};
use crate::stream::tables::StreamTables;

/// The finished work since the last commit, shared by the loop and the
/// rebalance callback (which runs inside the consumer's poll, never while
/// the loop holds the lock).
/// Longest the rebalance callback waits for acknowledgements.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Checkpoint {
    inner: Arc<Mutex<Finished>>,
    topic: String,
}

/// The online topics and the file a checkpoint saves them to.
#[derive(Debug, Clone)]
pub struct OnlineState {
    pub topics: Arc<Mutex<OnlineTopics>>,
    pub path: PathBuf,
}

impl OnlineState {
    /// The topics under a stream's `data` directory (`online/topics.json`):
    /// resumed when a previous run saved them (with `params` from now on),
    /// else seeded from `model` (the `LATEST`), with the seeded topics' births.
    pub fn open(
        data: &Path,
        params: OnlineParams,
        model: &Model,
    ) -> anyhow::Result<(Self, Vec<TopicEvent>)> {
        let path = data.join("online").join("topics.json");
        let loaded = OnlineTopics::load(&path)
            .with_context(|| format!("reading the online topics in `{}`", path.display()))?;
        let (topics, events) = match loaded {
            Some(mut topics) => {
                tracing::info!(
                    "resuming {} online topics from `{}` ({} micro-batches so far)",
                    topics.alive(),
                    path.display(),
                    topics.batches()
                );
                topics.set_params(params);
                (topics, Vec::new())
            }
            None => OnlineTopics::seeded(model, params, 0, chrono::Utc::now().timestamp_micros()),
        };
        let state = Self {
            topics: Arc::new(Mutex::new(topics)),
            path,
        };
        Ok((state, events))
    }

    pub fn lock(&self) -> MutexGuard<'_, OnlineTopics> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves the topics as covering `pending` (next offsets per partition).
    fn save(&self, pending: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
        let mut topics = self.lock();
        for (partition, next) in pending {
            let covered = topics.offsets.entry(*partition).or_insert(0);
            *covered = (*covered).max(*next);
        }
        topics
            .save(&self.path)
            .with_context(|| format!("saving the online topics to `{}`", self.path.display()))
    }
}

#[derive(Debug)]
struct Finished {
    tables: Option<StreamTables>,
    online: Option<OnlineState>,
    /// Next offset to commit, per partition.
    pending: BTreeMap<i32, i64>,
    /// Results of the pending micro-batches not yet acknowledged.
    in_flight: InFlight,
}

impl Checkpoint {
    pub fn new(topic: &str, tables: StreamTables) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Finished {
                tables: Some(tables),
                online: None,
                pending: BTreeMap::new(),
                in_flight: InFlight::default(),
            })),
            topic: topic.to_string(),
        }
    }

    /// Saves `online` at every commit, before the offsets.
    pub fn with_online(self, online: OnlineState) -> Self {
        self.lock().online = Some(online);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Finished> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a finished micro-batch: its results sent go in flight, its
    /// rows to the tables (by `write`), and its offsets become pending. All
    /// under one lock: a revoke may commit at any moment (the hook runs in
    /// the consumer's `recv`, on the receiving task), and it must never see
    /// offsets pending whose results it cannot await.
    pub fn finish(
        &self,
        offsets: impl IntoIterator<Item = (i32, i64)>,
        flight: InFlight,
        write: impl FnOnce(&mut StreamTables) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut done = self.lock();
        done.in_flight.extend(flight);
        let tables = done
            .tables
            .as_mut()
            .context("the stream's tables are closed")?;
        write(tables)?;
        for (partition, offset) in offsets {
            let next = done.pending.entry(partition).or_insert(0);
            *next = (*next).max(offset + 1);
        }
        Ok(())
    }

    /// Adds the results of a finished micro-batch, sent and not yet acknowledged.
    pub fn add_in_flight(&self, flight: InFlight) {
        self.lock().in_flight.extend(flight);
    }

    /// Results sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Takes the results in flight, for the loop to await them (the lock is
    /// not held across an await; the rebalance callback cannot run then, as
    /// it runs only inside the loop's poll of the consumer).
    pub fn take_in_flight(&self) -> InFlight {
        std::mem::take(&mut self.lock().in_flight)
    }

    /// The rebalance callback's checkpoint: flushes the producer, and commits
    /// only if every result in flight was acknowledged (otherwise the
    /// partitions' next owner replays from the last commit).
    pub fn commit_on_revoke<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        producer: &FutureProducer<LogContext>,
    ) -> anyhow::Result<()> {
        let flushed = tokio::task::block_in_place(|| producer.flush(FLUSH_TIMEOUT));
        if let Err(e) = flushed {
            anyhow::bail!("flushing the producer: {e}");
        }
        if !self.lock().in_flight.acknowledged() {
            anyhow::bail!("some results were not acknowledged");
        }
        self.commit(consumer, None)
    }

    /// Closes the open Parquet files, then commits the pending offsets of the
    /// partitions in `owned` (all of them when `None`). A refused commit is
    /// only logged: the partition's next owner replays from the last commit.
    /// Nothing is committed while results are in flight: settle them first.
    pub fn commit<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        owned: Option<&HashSet<i32>>,
    ) -> anyhow::Result<()> {
        let tpl = {
            let mut done = self.lock();
            anyhow::ensure!(
                done.in_flight.is_empty(),
                "{} results are not acknowledged yet; nothing committed",
                done.in_flight.len()
            );
            if let Some(tables) = done.tables.as_mut() {
                tables
                    .checkpoint()
                    .context("closing the stream's Parquet files")?;
            }
            if let Some(owned) = owned {
                done.pending.retain(|p, _| owned.contains(p));
            }
            if let Some(online) = &done.online {
                online.save(&done.pending)?;
            }
            self.offsets(&done.pending)
        };
        if tpl.count() == 0 {
            return Ok(());
        }
        // A synchronous commit waits on the broker: tell tokio this worker
        // blocks, as the stream did before the commit moved here.
        match tokio::task::block_in_place(|| consumer.commit(&tpl, CommitMode::Sync)) {
            Ok(()) => self.committed(&tpl),
            Err(e) => tracing::warn!("committing offsets failed (will retry): {e}"),
        }
        Ok(())
    }

    fn offsets(&self, pending: &BTreeMap<i32, i64>) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in pending {
            let _ = tpl.add_partition_offset(&self.topic, *partition, Offset::Offset(*next));
        }
        tpl
    }

    /// Drops the pending offsets `tpl` committed, unless newer work came in.
    fn committed(&self, tpl: &TopicPartitionList) {
        let mut done = self.lock();
        for e in tpl.elements() {
            if let (Offset::Offset(sent), Some(next)) =
                (e.offset(), done.pending.get(&e.partition()))
                && *next <= sent
            {
                done.pending.remove(&e.partition());
            }
        }
    }

    /// Closes the tables for good. After a failed run the pending offsets
    /// are dropped, so nothing (not even the revoke on shutdown) commits them.
    pub fn close(&self, succeeded: bool) -> anyhow::Result<()> {
        let mut done = self.lock();
        if !succeeded {
            done.pending.clear();
        }
        match done.tables.take() {
            Some(tables) => tables.close().context("closing the stream's Parquet files"),
            None => Ok(()),
        }
    }
}
