//! Online topics for `adlens stream --online`: the Dirichlet multinomial
//! mixture of [`super::dmm`], updated one micro-batch at a time in the
//! manner of MStreamF (Yin, Chao, Wang, Li, "Model-based Clustering of Short
//! Text Streams", KDD 2018) and the Dynamic Clustering Topic model (Liang,
//! Yilmaz, Kanoulas, KDD 2016).
//!
//! Per micro-batch:
//! 1. a start: the batch's documents are dealt at random into
//!    `fresh_topics` new topics (with 0, MStreamF's one pass instead: each
//!    document in turn joins an existing topic or opens a new one);
//! 2. up to `iterations` Gibbs sweeps over the batch's documents (fewer once
//!    a sweep moves at most one in [`SETTLED`]), each drawn from
//!    `p(z) ∝ (m_z + α) · p(d | z)` for a topic with `m_z` documents and
//!    `α · D · p(d | new)` for a new one (`D`: documents counted; the
//!    Chinese-restaurant term, so the number of topics is found, not
//!    given). Older batches are not resampled: they are the prior the batch
//!    is read against;
//! 3. the batch's contribution (per topic: documents, tokens, word counts)
//!    is kept as a window; windows older than [`Forget`] are subtracted, so
//!    a topic no campaign uses any more empties and dies;
//! 4. a topic is *born* (a [`TopicEvent`]) when it first holds
//!    `min_topic_size` documents, and *dies* when it empties. Smaller topics
//!    are nascent: their documents are outliers.
//!
//! Topic ids are never reused: a topic that dies takes its id with it, and
//! the slot it leaves gets a fresh id when a new topic opens there.
//!
//! The state serializes to JSON ([`OnlineTopics::save`], written to a
//! temporary file and renamed), so the stream can checkpoint it with the
//! offsets it covers and resume the same topics after a restart.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::artifact::{Clusters, Model};
use super::dmm::{self, Counts, Doc, Vocabulary};
use super::features::{CampaignText, FeatureParams};

/// When a micro-batch's contribution to the topics is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forget {
    /// Once this many newer micro-batches were processed (at least 1).
    Batches(u64),
    /// This many seconds after it was processed (at least 1).
    Seconds(u64),
}

/// How the online topics are updated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OnlineParams {
    pub alpha: f64,
    pub beta: f64,
    /// Gibbs sweeps over each micro-batch after its start, at most (see
    /// [`SETTLED`]).
    pub iterations: usize,
    /// New topics a micro-batch's documents are dealt into before the
    /// sweeps (0: MStreamF's one pass instead).
    #[serde(default = "default_fresh_topics")]
    pub fresh_topics: usize,
    pub forget: Forget,
    /// Documents a topic needs to be born (announced, not an outlier).
    pub min_topic_size: u64,
    pub seed: u64,
}

/// The `stream --online` defaults, chosen on the labelled sets fed
/// topic-sorted in micro-batches of 2,000, over four seeds (README "Online
/// topics"):
/// - α: with 0.01 the topics were more and smaller, NMI lower on both;
/// - two fresh topics: with MStreamF's one pass, the first documents of a
///   new subject joined an old topic over a shared common word and the rest
///   followed them (StackOverflow: 6 topics held 18 of the 20 tags, NMI
///   0.40); dealt into fresh topics, they have somewhere to gather (NMI
///   0.62; SearchSnippets 0.53 to 0.57). One fresh topic was best when a
///   micro-batch held one subject, three when it held several;
/// - 10 sweeps: 15 added ≤0.01 NMI for half again the time, 5 lost 0.04;
/// - β 0.2: against 0.1, SearchSnippets NMI 0.573 to 0.645 and ARI 0.418 to
///   0.534 (36 topics to 22), StackOverflow the same (NMI 0.616 and 0.617,
///   ARI 0.470 and 0.464; 38 topics to 28); at 0.3 StackOverflow lost.
pub const DEFAULTS: OnlineParams = OnlineParams {
    alpha: 0.003,
    beta: 0.2,
    iterations: 10,
    fresh_topics: 2,
    forget: Forget::Batches(10),
    min_topic_size: 10,
    seed: 42,
};

/// The sweeps over a micro-batch stop once one moves at most one document in
/// this many: the documents have found their topics and further sweeps would
/// redraw the same ones. On the 1M-record bench backlog scored from a
/// k-means model, the first sweep moved nearly every document out of its
/// fresh topic and the next ones 0-4 of 20,000, so 10 sweeps did the work
/// of 2 (`stream --online` +34-46% records/s). Topic-sorted, the labelled
/// sets move 5-35% of a micro-batch every sweep and never stop early (the
/// quality rows are unchanged).
pub const SETTLED: usize = 1000;

/// Checkpoints written before `fresh_topics` existed resume with the default.
fn default_fresh_topics() -> usize {
    DEFAULTS.fresh_topics
}

/// A topic's birth or death.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Born,
    Died,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Born => "born",
            Self::Died => "died",
        }
    }
}

/// What happened to a topic in a micro-batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicEvent {
    pub event: EventKind,
    pub topic: u32,
    /// Born: its documents then. Died: the most it ever had.
    pub size: u64,
    pub label: String,
    /// The micro-batch (0: seeded from a model).
    pub batch: u64,
}

/// The topics a micro-batch's documents were given, in document order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignment {
    pub topic: Vec<u32>,
    /// Minus the document's mean log-probability per token under its topic.
    pub distance: Vec<f32>,
    /// In a topic not born yet (fewer than `min_topic_size` documents).
    pub outlier: Vec<bool>,
    /// The label of every topic in `topic`.
    pub labels: HashMap<u32, String>,
    pub events: Vec<TopicEvent>,
    /// Gibbs sweeps the micro-batch took (see [`SETTLED`]).
    pub sweeps: usize,
}

/// One topic's share of one micro-batch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Share {
    docs: u64,
    tokens: u64,
    words: BTreeMap<u32, u32>,
}

/// A micro-batch's contribution, kept until it is forgotten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Window {
    batch: u64,
    at_micros: i64,
    /// By slot.
    shares: BTreeMap<u32, Share>,
}

/// A place in the counts; the topic in it changes when it empties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Slot {
    /// `None` while free.
    topic: Option<u32>,
    born: bool,
    peak: u64,
    /// The last label given (a dying topic is announced with it).
    label: String,
}

/// The online topics: counts, the windows they are made of, and who is who.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineTopics {
    pub params: OnlineParams,
    /// How campaigns become tokens (the seed model's, or the defaults).
    pub features: FeatureParams,
    /// The model version the topics were seeded from, if any.
    pub seeded_from: Option<String>,
    /// Next input offset per partition that the counts cover (kept by the
    /// stream at each checkpoint).
    pub offsets: BTreeMap<i32, i64>,
    vocabulary: Vocabulary,
    counts: Counts,
    slots: Vec<Slot>,
    next_topic: u32,
    windows: VecDeque<Window>,
    batches: u64,
    /// A k-means seed reserves its clusters' ids for the first micro-batch,
    /// which starts from the model's assignment (see [`Self::wants_initial`]).
    kmeans_seed: bool,
}

impl OnlineTopics {
    /// Topics that start from nothing.
    pub fn empty(params: OnlineParams, features: FeatureParams) -> Self {
        Self {
            counts: Counts::new(0, 0, params.alpha, params.beta),
            params,
            features,
            seeded_from: None,
            offsets: BTreeMap::new(),
            vocabulary: Vocabulary::default(),
            slots: Vec::new(),
            next_topic: 0,
            windows: VecDeque::new(),
            batches: 0,
            kmeans_seed: false,
        }
    }

    /// Topics seeded from a trained model, numbered from `first_topic`
    /// (0 at start, so they keep the model's cluster ids).
    ///
    /// - dmm: the model's counts are the first window (forgotten like a
    ///   micro-batch), its clusters the first topics, born if large enough;
    /// - k-means: its clusters' ids are reserved and the first micro-batch
    ///   starts from the model's assignment instead of the first pass.
    pub fn seeded(
        model: &Model,
        params: OnlineParams,
        first_topic: u32,
        now_micros: i64,
    ) -> (Self, Vec<TopicEvent>) {
        let mut topics = Self::empty(params, model.meta.features.clone());
        topics.seeded_from = Some(model.meta.version.clone());
        let k = model.len();
        topics.slots = (0..k)
            .map(|z| Slot {
                topic: Some(first_topic + z as u32),
                ..Slot::default()
            })
            .collect();
        topics.next_topic = first_topic + k as u32;
        let mut events = Vec::new();
        match &model.clusters {
            Clusters::Centroids { .. } => {
                topics.counts = Counts::new(k, 0, params.alpha, params.beta);
                topics.kmeans_seed = true;
            }
            Clusters::Mixture {
                vocabulary, counts, ..
            } => {
                topics.vocabulary = vocabulary.clone();
                topics.counts = Counts {
                    alpha: params.alpha,
                    beta: params.beta,
                    ..counts.clone()
                };
                topics.windows.push_back(Window {
                    batch: 0,
                    at_micros: now_micros,
                    shares: shares_of(&topics.counts),
                });
                for z in 0..k {
                    let label = topics.counts.top_terms(&topics.vocabulary, z, 5).join(", ");
                    topics.slots[z].label = label;
                }
                topics.announce(0, &mut events);
            }
        }
        (topics, events)
    }

    /// Takes `params` for what comes next (a restart with other flags).
    pub fn set_params(&mut self, params: OnlineParams) {
        self.params = params;
        self.counts.alpha = params.alpha;
        self.counts.beta = params.beta;
    }

    /// True when the next micro-batch should start from a k-means model's
    /// assignment (pass it to [`Self::update`]).
    pub fn wants_initial(&self) -> bool {
        self.kmeans_seed
    }

    /// Topics with documents now.
    pub fn alive(&self) -> usize {
        self.counts.docs.iter().filter(|m| **m > 0).count()
    }

    /// Micro-batches processed.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The document of a campaign, adding its new words to the vocabulary.
    pub fn doc(&mut self, text: &CampaignText<'_>) -> Doc {
        let mut ids = Vec::new();
        let vocabulary = &mut self.vocabulary;
        text.for_each_token(&self.features, |token, _| {
            ids.push(vocabulary.id_or_insert(token))
        });
        self.counts.words.resize(self.vocabulary.len(), Vec::new());
        Doc::from_ids(ids)
    }

    /// Assigns a micro-batch's documents (made by [`Self::doc`]) to topics,
    /// updates the topics and forgets what expired. `initial` is a k-means
    /// seed's assignment of the documents (see [`Self::wants_initial`]).
    pub fn update(&mut self, docs: &[Doc], initial: Option<&[u32]>, now_micros: i64) -> Assignment {
        self.batches += 1;
        let batch = self.batches;
        // Seeded by the batch number, so a resumed state draws as it would have.
        let mut rng =
            Pcg64Mcg::seed_from_u64(self.params.seed ^ batch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut events = Vec::new();
        let docs = &self.informative(docs)[..];
        let mut scratch = Vec::new();
        let mut z_of = self.start(docs, initial, &mut rng, &mut scratch);
        self.release_reserved();
        let mut marks = Vec::new();
        let mut sweeps = 0;
        while sweeps < self.params.iterations {
            sweeps += 1;
            let mut moved = 0;
            for (doc, z) in docs.iter().zip(z_of.iter_mut()) {
                self.counts.remove_marked(doc, *z, &mut marks);
                let new = self.choose(doc, Some(*z), &mut rng, &mut scratch);
                if new == *z {
                    self.counts.put_back(doc, new, &marks);
                    continue;
                }
                moved += 1;
                self.leave(*z, batch, &mut events);
                self.place(doc, new);
                *z = new;
            }
            if moved * SETTLED <= docs.len() {
                break;
            }
        }
        self.name_new_topics();
        self.windows
            .push_back(window(docs, &z_of, batch, now_micros));
        let labels = self.label_batch(docs, &z_of);
        self.forget(batch, now_micros, &mut events);
        self.announce(batch, &mut events);
        let assignment = Assignment {
            sweeps,
            ..self.assignment(docs, &z_of, labels, events)
        };
        // Last: it renumbers the words `docs` are made of.
        self.compact_vocabulary();
        assignment
    }

    /// Places the batch's documents before the sweeps: a k-means seed's
    /// assignment, else dealt at random into `fresh_topics` new topics, else
    /// (0 of them) one pass where each draws its topic in turn.
    fn start(
        &mut self,
        docs: &[Doc],
        initial: Option<&[u32]>,
        rng: &mut Pcg64Mcg,
        scratch: &mut Vec<f64>,
    ) -> Vec<usize> {
        let fresh = match initial {
            Some(_) => Vec::new(),
            None => self.free_slots(self.params.fresh_topics),
        };
        let mut z_of = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            let z = match initial.and_then(|init| init.get(i)) {
                Some(&z) if (z as usize) < self.slots.len() => z as usize,
                _ if !fresh.is_empty() => fresh[rng.random_range(0..fresh.len())],
                _ => self.choose(doc, None, rng, scratch),
            };
            self.place(doc, z);
            z_of.push(z);
        }
        z_of
    }

    /// The batch's documents without the words that link them to nothing:
    /// words no topic uses that no other document of the batch has, the
    /// online form of batch dmm's vocabulary of words in at least two
    /// documents. Why: such a word raises every existing topic's length
    /// penalty and no topic's word term, so it pushed documents into new
    /// topics (SearchSnippets topic-sorted, α 0.01, 5 sweeps, seeds 1-4:
    /// ~78 topics and NMI 0.42 with them, ~46 and 0.52 without; see the
    /// README). A document left with no word keeps its own.
    fn informative(&self, docs: &[Doc]) -> Vec<Doc> {
        let mut batch_docs: HashMap<u32, u32> = HashMap::new();
        for doc in docs {
            for (w, _) in &doc.words {
                *batch_docs.entry(*w).or_default() += 1;
            }
        }
        let used = |w: u32| {
            self.counts
                .words
                .get(w as usize)
                .is_some_and(|u| !u.is_empty())
        };
        let in_play = |w: u32| batch_docs[&w] >= 2 || used(w);
        docs.iter()
            .map(|doc| {
                let words: Vec<(u32, u32)> = doc
                    .words
                    .iter()
                    .copied()
                    .filter(|(w, _)| in_play(*w))
                    .collect();
                if words.is_empty() {
                    return doc.clone();
                }
                let len = words.iter().map(|(_, c)| c).sum();
                Doc { words, len }
            })
            .collect()
    }

    /// Draws a slot for `doc` (not counted): an existing topic, or a new
    /// one in `own` if the document just emptied it, else in a free slot.
    fn choose(
        &mut self,
        doc: &Doc,
        own: Option<usize>,
        rng: &mut Pcg64Mcg,
        scratch: &mut Vec<f64>,
    ) -> usize {
        let counted: u64 = self.counts.docs.iter().sum();
        let new_weight = (counted.max(1) as f64).ln();
        if let Some(z) = dmm::draw(&self.counts, doc, rng, scratch, Some(new_weight)) {
            return z;
        }
        if let Some(z) = own.filter(|z| self.counts.docs[*z] == 0) {
            return z;
        }
        self.free_slots(1)[0]
    }

    /// `n` slots without a topic or documents, added if there are not enough.
    fn free_slots(&mut self, n: usize) -> Vec<usize> {
        let mut free: Vec<usize> = (0..self.slots.len())
            .filter(|z| self.slots[*z].topic.is_none() && self.counts.docs[*z] == 0)
            .take(n)
            .collect();
        while free.len() < n {
            free.push(self.slots.len());
            self.slots.push(Slot::default());
            self.counts.docs.push(0);
            self.counts.tokens.push(0);
        }
        free
    }

    /// Counts `doc` in slot `z` (a topic opened there has no id until
    /// [`Self::name_new_topics`]).
    fn place(&mut self, doc: &Doc, z: usize) {
        self.counts.add(doc, z);
        let slot = &mut self.slots[z];
        slot.peak = slot.peak.max(self.counts.docs[z]);
    }

    /// Gives an id to each topic the batch opened that still has documents
    /// after the sweeps. Why not at opening: fresh topics and new ones
    /// drawn in a sweep often empty again before the batch ends, and ids
    /// are never reused, so each would waste one.
    fn name_new_topics(&mut self) {
        for (z, slot) in self.slots.iter_mut().enumerate() {
            if slot.topic.is_none() && self.counts.docs[z] > 0 {
                slot.topic = Some(self.next_topic);
                self.next_topic += 1;
            }
        }
    }

    /// After documents left slot `z`: if it emptied, its topic died.
    fn leave(&mut self, z: usize, batch: u64, events: &mut Vec<TopicEvent>) {
        if self.counts.docs[z] > 0 {
            return;
        }
        let slot = std::mem::take(&mut self.slots[z]);
        if let (Some(topic), true) = (slot.topic, slot.born) {
            events.push(TopicEvent {
                event: EventKind::Died,
                topic,
                size: slot.peak,
                label: slot.label,
                batch,
            });
        }
    }

    /// After a k-means seed's first batch: its clusters that got no
    /// document give their slots up (their ids are not reused).
    fn release_reserved(&mut self) {
        if !std::mem::take(&mut self.kmeans_seed) {
            return;
        }
        for (z, slot) in self.slots.iter_mut().enumerate() {
            if self.counts.docs[z] == 0 {
                *slot = Slot::default();
            }
        }
    }

    /// Subtracts the windows that expired.
    fn forget(&mut self, batch: u64, now_micros: i64, events: &mut Vec<TopicEvent>) {
        let expired = |w: &Window| match self.params.forget {
            Forget::Batches(n) => w.batch + n.max(1) <= batch,
            Forget::Seconds(s) => {
                w.batch < batch
                    && w.at_micros
                        .saturating_add(s.max(1).saturating_mul(1_000_000) as i64)
                        < now_micros
            }
        };
        let mut gone = Vec::new();
        while self.windows.front().is_some_and(expired) {
            if let Some(w) = self.windows.pop_front() {
                gone.push(w);
            }
        }
        for w in gone {
            for (z, share) in &w.shares {
                let words: Vec<(u32, u32)> = share.words.iter().map(|(w, c)| (*w, *c)).collect();
                self.counts
                    .subtract(*z as usize, share.docs, share.tokens, &words);
                self.leave(*z as usize, batch, events);
            }
        }
    }

    /// Topics that reached `min_topic_size` are born.
    fn announce(&mut self, batch: u64, events: &mut Vec<TopicEvent>) {
        let min = self.params.min_topic_size.max(1);
        for (z, slot) in self.slots.iter_mut().enumerate() {
            if let (Some(topic), false) = (slot.topic, slot.born)
                && self.counts.docs[z] >= min
            {
                slot.born = true;
                events.push(TopicEvent {
                    event: EventKind::Born,
                    topic,
                    size: self.counts.docs[z],
                    label: slot.label.clone(),
                    batch,
                });
            }
        }
    }

    /// Labels the batch's topics from the words of their new documents
    /// (ranked as [`Counts::top_words`] ranks them), and remembers them.
    fn label_batch(&mut self, docs: &[Doc], z_of: &[usize]) -> HashMap<usize, String> {
        let mut candidates: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (doc, z) in docs.iter().zip(z_of) {
            candidates
                .entry(*z)
                .or_default()
                .extend(doc.words.iter().map(|(w, _)| *w as usize));
        }
        let mut labels = HashMap::new();
        for (z, words) in candidates {
            let ranked = self.counts.top_words_among(z, words);
            let label = self.counts.terms_of(&self.vocabulary, ranked, 5).join(", ");
            self.slots[z].label.clone_from(&label);
            labels.insert(z, label);
        }
        labels
    }

    fn assignment(
        &self,
        docs: &[Doc],
        z_of: &[usize],
        labels: HashMap<usize, String>,
        events: Vec<TopicEvent>,
    ) -> Assignment {
        let mut out = Assignment {
            events,
            ..Assignment::default()
        };
        for (doc, &z) in docs.iter().zip(z_of) {
            let slot = &self.slots[z];
            // The batch's own documents are never forgotten with it, so
            // their slots hold a topic; `MAX` would only mark a broken state.
            let topic = slot.topic.unwrap_or(u32::MAX);
            let likelihood = self.counts.per_token_log_likelihood(doc, 0, z);
            out.topic.push(topic);
            out.distance.push(-likelihood as f32);
            out.outlier.push(!slot.born);
            if let Some(label) = labels.get(&z) {
                out.labels.entry(topic).or_insert_with(|| label.clone());
            }
        }
        out
    }

    /// Drops words no topic uses any more (their counts were all forgotten),
    /// once they are the majority, so the vocabulary follows the stream
    /// instead of growing for ever. Word ids in the counts and windows are
    /// renumbered.
    fn compact_vocabulary(&mut self) {
        let used = self.counts.words.iter().filter(|u| !u.is_empty()).count();
        if self.counts.words.len() < 1024 || used * 2 >= self.counts.words.len() {
            return;
        }
        let mut new_id = vec![u32::MAX; self.counts.words.len()];
        let mut terms = Vec::with_capacity(used);
        let mut words = Vec::with_capacity(used);
        let old_terms: Vec<String> = std::mem::take(&mut self.vocabulary).into();
        for (w, (users, term)) in std::mem::take(&mut self.counts.words)
            .into_iter()
            .zip(old_terms)
            .enumerate()
        {
            if !users.is_empty() {
                new_id[w] = terms.len() as u32;
                terms.push(term);
                words.push(users);
            }
        }
        self.vocabulary = Vocabulary::from_terms(terms);
        self.counts.words = words;
        for w in &mut self.windows {
            for share in w.shares.values_mut() {
                share.words = share
                    .words
                    .iter()
                    .map(|(w, c)| (new_id[*w as usize], *c))
                    .collect();
            }
        }
    }

    /// Replaces the topics with a new model's: every living topic dies, the
    /// model's clusters are born under fresh ids. The rule when cron
    /// publishes a new `LATEST` while the stream runs.
    pub fn reseed(&mut self, model: &Model, now_micros: i64) -> Vec<TopicEvent> {
        let batch = self.batches;
        let mut events = Vec::new();
        for z in 0..self.slots.len() {
            self.counts.docs[z] = 0;
            self.leave(z, batch, &mut events);
        }
        let (mut seeded, born) = Self::seeded(model, self.params, self.next_topic, now_micros);
        seeded.batches = self.batches;
        seeded.offsets = std::mem::take(&mut self.offsets);
        *self = seeded;
        events.extend(born.into_iter().map(|e| TopicEvent { batch, ..e }));
        events
    }

    /// Writes the state to `path` atomically ([`crate::layout::write_atomic`]).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::layout::write_atomic(path, &serde_json::to_vec(self)?)
    }

    /// The state [`Self::save`] wrote, if there is one.
    pub fn load(path: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Each slot's documents, tokens and word counts in `counts`.
fn shares_of(counts: &Counts) -> BTreeMap<u32, Share> {
    let mut shares: BTreeMap<u32, Share> = (0..counts.clusters())
        .filter(|z| counts.docs[*z] > 0)
        .map(|z| {
            (
                z as u32,
                Share {
                    docs: counts.docs[z],
                    tokens: counts.tokens[z],
                    words: BTreeMap::new(),
                },
            )
        })
        .collect();
    for (w, users) in counts.words.iter().enumerate() {
        for (z, n) in users {
            if let Some(share) = shares.get_mut(z) {
                share.words.insert(w as u32, *n);
            }
        }
    }
    shares
}

/// The contribution of a batch's documents in their final slots.
fn window(docs: &[Doc], z_of: &[usize], batch: u64, at_micros: i64) -> Window {
    let mut shares: BTreeMap<u32, Share> = BTreeMap::new();
    for (doc, z) in docs.iter().zip(z_of) {
        let share = shares.entry(*z as u32).or_default();
        share.docs += 1;
        share.tokens += u64::from(doc.len);
        for (w, c) in &doc.words {
            *share.words.entry(*w).or_default() += c;
        }
    }
    Window {
        batch,
        at_micros,
        shares,
    }
}

#[cfg(test)]
mod tests;
