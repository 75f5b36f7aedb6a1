//! Unit tests of the online topics: seeding, births and deaths, forgetting,
//! ids never reused, checkpoints that resume exactly.

use super::*;

fn params(forget: Forget) -> OnlineParams {
    OnlineParams {
        alpha: 0.1,
        beta: 0.1,
        iterations: 3,
        fresh_topics: DEFAULTS.fresh_topics,
        forget,
        min_topic_size: 3,
        seed: 7,
    }
}

/// The documents of campaigns with these titles.
fn docs(topics: &mut OnlineTopics, titles: &[&str]) -> Vec<Doc> {
    titles
        .iter()
        .map(|t| {
            topics.doc(&CampaignText {
                title: Some(t),
                ..CampaignText::default()
            })
        })
        .collect()
}

/// One micro-batch of these titles, processed `batches()` seconds in.
fn batch(topics: &mut OnlineTopics, titles: &[&str]) -> Assignment {
    let docs = docs(topics, titles);
    topics.update(&docs, None, topics.batches() as i64 * 1_000_000)
}

const SHOES: [&str; 4] = [
    "running shoes trail sale",
    "trail running shoes light",
    "shoes for trail running",
    "light running shoes",
];
const LOANS: [&str; 4] = [
    "home loan low rate mortgage",
    "mortgage rate home loan",
    "low mortgage rate loan",
    "home loan mortgage offer",
];

fn events(a: &Assignment, kind: EventKind) -> Vec<u32> {
    a.events
        .iter()
        .filter(|e| e.event == kind)
        .map(|e| e.topic)
        .collect()
}

#[test]
fn topics_are_found_born_and_labelled() {
    let mut topics = OnlineTopics::empty(params(Forget::Batches(5)), FeatureParams::default());
    let titles: Vec<&str> = SHOES.iter().chain(LOANS.iter()).copied().collect();
    let a = batch(&mut topics, &titles);
    let shoes = a.topic[0];
    let loans = a.topic[4];
    assert_ne!(shoes, loans);
    assert!(a.topic[..4].iter().all(|t| *t == shoes), "{:?}", a.topic);
    assert!(a.topic[4..].iter().all(|t| *t == loans), "{:?}", a.topic);
    let mut born = events(&a, EventKind::Born);
    born.sort_unstable();
    let mut expected = vec![shoes, loans];
    expected.sort_unstable();
    assert_eq!(born, expected);
    assert!(a.labels[&shoes].contains("running"), "{:?}", a.labels);
    assert!(a.labels[&loans].contains("loan"), "{:?}", a.labels);
    assert!(a.outlier.iter().all(|o| !o));
    assert_eq!(topics.alive(), 2);
}

#[test]
fn the_sweeps_stop_once_the_documents_have_found_their_topics() {
    let mut topics = OnlineTopics::empty(
        OnlineParams {
            iterations: 10,
            ..params(Forget::Batches(5))
        },
        FeatureParams::default(),
    );
    let titles: Vec<&str> = SHOES.iter().chain(LOANS.iter()).copied().collect();
    let first = batch(&mut topics, &titles);
    // The same subjects again: out of the fresh topics in the first sweep,
    // then (nearly) nothing moves, and a sweep that moves nothing is the last.
    let again = batch(&mut topics, &titles);
    assert_eq!(again.topic, first.topic);
    assert!((2..10).contains(&again.sweeps), "{again:?}");
    assert!(first.sweeps >= 2 && first.sweeps <= 10, "{first:?}");
    // With 0 sweeps allowed, none run.
    let mut none = OnlineTopics::empty(
        OnlineParams {
            iterations: 0,
            ..params(Forget::Batches(5))
        },
        FeatureParams::default(),
    );
    assert_eq!(batch(&mut none, &titles).sweeps, 0);
}

#[test]
fn a_topic_no_campaign_uses_dies_and_its_id_is_never_reused() {
    let mut topics = OnlineTopics::empty(params(Forget::Batches(2)), FeatureParams::default());
    let first = batch(&mut topics, &SHOES);
    let shoes = first.topic[0];
    // Loans only from now on: shoes' batch is forgotten after two more.
    let second = batch(&mut topics, &LOANS);
    assert!(events(&second, EventKind::Died).is_empty());
    let third = batch(&mut topics, &LOANS);
    assert_eq!(events(&third, EventKind::Died), vec![shoes]);
    let died = &third
        .events
        .iter()
        .find(|e| e.event == EventKind::Died)
        .unwrap();
    assert_eq!(died.size, 4);
    assert!(died.label.contains("running"), "{}", died.label);
    assert_eq!(topics.alive(), 1);
    // Shoes come back: a new topic, with an id never given before.
    let fourth = batch(&mut topics, &SHOES);
    let again = fourth.topic[0];
    assert!(again > shoes && again > second.topic[0], "{again}");
    assert_eq!(events(&fourth, EventKind::Born), vec![again]);
}

#[test]
fn small_topics_are_outliers_until_born() {
    let mut topics = OnlineTopics::empty(params(Forget::Batches(10)), FeatureParams::default());
    let a = batch(
        &mut topics,
        &["zebra crossing paint", "zebra crossing paint"],
    );
    assert!(a.outlier.iter().all(|o| *o));
    assert!(a.events.is_empty());
    let b = batch(&mut topics, &["zebra crossing paint"]);
    assert_eq!(b.topic[0], a.topic[0]);
    assert!(!b.outlier[0]);
    assert_eq!(events(&b, EventKind::Born), vec![a.topic[0]]);
}

#[test]
fn time_forgetting_keeps_recent_batches() {
    let mut topics = OnlineTopics::empty(params(Forget::Seconds(2)), FeatureParams::default());
    batch(&mut topics, &SHOES); // at 0 s
    let loans = batch(&mut topics, &LOANS); // at 1 s
    assert_eq!(topics.alive(), 2);
    let docs = docs(&mut topics, &LOANS);
    // At 2.5 s the shoes batch (0 s) is older than 2 s; the loans (1 s) are not.
    let a = topics.update(&docs, None, 2_500_000);
    assert_eq!(events(&a, EventKind::Died).len(), 1);
    assert_eq!(topics.alive(), 1);
    assert_eq!(a.topic[0], loans.topic[0]);
}

#[test]
fn a_saved_state_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("online.json");
    let mut topics = OnlineTopics::empty(params(Forget::Batches(2)), FeatureParams::default());
    batch(&mut topics, &SHOES);
    topics.offsets.insert(0, 42);
    topics.save(&path).unwrap();
    let mut resumed = OnlineTopics::load(&path).unwrap().unwrap();
    assert_eq!(resumed, topics);
    let a = batch(&mut topics, &LOANS);
    let b = batch(&mut resumed, &LOANS);
    assert_eq!(a, b);
    assert_eq!(resumed, topics);
    assert_eq!(
        OnlineTopics::load(&dir.path().join("none.json")).unwrap(),
        None
    );
}

#[test]
fn the_vocabulary_forgets_words_no_topic_uses() {
    let mut topics = OnlineTopics::empty(params(Forget::Batches(1)), FeatureParams::default());
    let many: Vec<String> = (0..2000).map(|i| format!("word{i} thing{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    batch(&mut topics, &many);
    let a = batch(&mut topics, &SHOES);
    assert!(topics.vocabulary.len() < 20, "{}", topics.vocabulary.len());
    // The remaining words still point at their counts.
    assert!(a.labels[&a.topic[0]].contains("running"), "{:?}", a.labels);
    let b = batch(&mut topics, &SHOES);
    assert_eq!(b.topic[0], a.topic[0]);
}

/// A dmm model: cluster 0 about running shoes, 1 about loans, 50 each.
fn dmm_model(version: &str) -> Model {
    let mut model = crate::model::artifact::tests::tiny_model();
    let terms = vec!["loan".to_string(), "running".into(), "shoes".into()];
    let mut counts = Counts::new(2, 3, 0.1, 0.1);
    for _ in 0..50 {
        counts.add(&Doc::from_ids(vec![1, 2]), 0);
        counts.add(&Doc::from_ids(vec![0, 0]), 1);
    }
    model.clusters = Clusters::Mixture {
        vocabulary: Vocabulary::from_terms(terms),
        counts,
        radius: vec![1.0; 2],
    };
    model.meta.version = version.into();
    model
}

#[test]
fn a_dmm_seed_keeps_its_ids_and_a_new_latest_reseeds_under_new_ones() {
    // With three words any new cluster is likely (an unseen word is 1 in
    // V): a small α keeps the draws on the seeded topics.
    let params = OnlineParams {
        alpha: 0.001,
        ..params(Forget::Batches(5))
    };
    let (mut topics, born) = OnlineTopics::seeded(&dmm_model("v1"), params, 0, 0);
    assert_eq!(
        born.iter().map(|e| (e.topic, e.size)).collect::<Vec<_>>(),
        vec![(0, 50), (1, 50)]
    );
    assert!(born[0].label.contains("running"), "{}", born[0].label);
    let a = batch(&mut topics, &["running shoes", "loan loan"]);
    assert_eq!(a.topic, vec![0, 1]);
    assert!(a.events.is_empty());

    let events = topics.reseed(&dmm_model("v2"), 1);
    let died: Vec<u32> = events
        .iter()
        .filter(|e| e.event == EventKind::Died)
        .map(|e| e.topic)
        .collect();
    let reborn: Vec<u32> = events
        .iter()
        .filter(|e| e.event == EventKind::Born)
        .map(|e| e.topic)
        .collect();
    // 2 and 3: the fresh topics the batch above was dealt into emptied
    // again, and spent no id.
    assert_eq!((died, reborn), (vec![0, 1], vec![2, 3]));
    assert_eq!(topics.seeded_from.as_deref(), Some("v2"));
    let b = batch(&mut topics, &["running shoes"]);
    assert_eq!(b.topic, vec![2]);
}

#[test]
fn a_kmeans_seed_starts_the_first_batch_from_its_assignment() {
    let model = crate::model::artifact::tests::tiny_model();
    let (mut topics, born) = OnlineTopics::seeded(&model, params(Forget::Batches(5)), 0, 0);
    assert!(born.is_empty() && topics.wants_initial());
    let docs = docs(&mut topics, &SHOES);
    let a = topics.update(&docs, Some(&[1, 1, 1, 1]), 0);
    assert_eq!(a.topic, vec![1; 4], "the model's cluster 1 keeps its id");
    assert!(!topics.wants_initial());
    // Cluster 0 got nothing: its slot is free, its id is not given again.
    let b = batch(&mut topics, &LOANS);
    assert!(b.topic.iter().all(|t| *t >= 2), "{:?}", b.topic);
}
