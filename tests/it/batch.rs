//! `adlens batch` and `adlens score`: clusters that recover the generator's
//! hidden topics, a versioned model, and cron safety.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use predicates::prelude::*;
use predicates::str::contains;

use crate::support::{adlens, benchmark, preprocess, query, scalar};

/// A generated, preprocessed data set with the hidden topic of every id.
fn prepared(dir: &Path, rows: u64) -> (PathBuf, HashMap<i64, String>) {
    let raw = dir.join("raw.csv");
    let truth = dir.join("topics.csv");
    adlens()
        .args([
            "-q",
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            "7",
            "--out",
        ])
        .arg(&raw)
        .arg("--truth")
        .arg(&truth)
        .assert()
        .success();
    let data = dir.join("clean");
    preprocess(&raw, &data);
    // The truth lists the dirty rows too, whose ids are not numbers.
    let (topics, _dirty_ids) = topics_of(&truth);
    (data, topics)
}

/// The topic of every id in a `id,topic` CSV (the generator's `--truth`, a
/// benchmark's labels), and how many rows had an id that is not a number
/// (left out of the map).
fn topics_of(path: &Path) -> (HashMap<i64, String>, usize) {
    let mut topics = HashMap::new();
    let mut not_numbers = 0;
    for record in csv::Reader::from_path(path).unwrap().records() {
        let record = record.unwrap();
        match record[0].parse::<i64>() {
            Ok(id) => {
                topics.insert(id, record[1].to_string());
            }
            Err(_) => not_numbers += 1,
        }
    }
    (topics, not_numbers)
}

fn batch(data: &Path, models: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    adlens()
        .args(["-q", "batch", "--k", "16", "--dim", "1024", "--data"])
        .arg(data)
        .arg("--models")
        .arg(models)
        .args(extra)
        .assert()
}

fn latest(models: &Path) -> String {
    std::fs::read_to_string(models.join("LATEST"))
        .unwrap()
        .trim()
        .to_string()
}

/// The `model.json` of the model LATEST names.
fn latest_meta(models: &Path) -> serde_json::Value {
    let path = models.join(latest(models)).join("model.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A `model.json` list of number pairs (`k_curve`, `beta_curve`).
fn number_pairs(meta: &serde_json::Value, key: &str) -> Vec<(f64, f64)> {
    meta[key]
        .as_array()
        .unwrap_or_else(|| panic!("no `{key}` in model.json"))
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// Normalised mutual information (arithmetic mean), as scikit-learn computes it.
fn nmi(pairs: &[(u64, String)]) -> f64 {
    let n = pairs.len() as f64;
    let mut joint: HashMap<(u64, &str), f64> = HashMap::new();
    let mut a: HashMap<u64, f64> = HashMap::new();
    let mut b: HashMap<&str, f64> = HashMap::new();
    for (c, t) in pairs {
        *joint.entry((*c, t.as_str())).or_default() += 1.0;
        *a.entry(*c).or_default() += 1.0;
        *b.entry(t.as_str()).or_default() += 1.0;
    }
    let entropy = |m: &mut dyn Iterator<Item = f64>| -m.map(|x| x / n * (x / n).ln()).sum::<f64>();
    let mi: f64 = joint
        .iter()
        .map(|((c, t), x)| x / n * ((x * n) / (a[c] * b[t])).ln())
        .sum();
    mi / ((entropy(&mut a.values().copied()) + entropy(&mut b.values().copied())) / 2.0)
}

/// Adjusted Rand index, as scikit-learn computes it.
fn ari(pairs: &[(u64, String)]) -> f64 {
    let pairs_of = |x: f64| x * (x - 1.0) / 2.0;
    let mut joint: HashMap<(u64, &str), f64> = HashMap::new();
    let mut a: HashMap<u64, f64> = HashMap::new();
    let mut b: HashMap<&str, f64> = HashMap::new();
    for (c, t) in pairs {
        *joint.entry((*c, t.as_str())).or_default() += 1.0;
        *a.entry(*c).or_default() += 1.0;
        *b.entry(t.as_str()).or_default() += 1.0;
    }
    let index: f64 = joint.values().map(|x| pairs_of(*x)).sum();
    let (sa, sb) = (
        a.values().map(|x| pairs_of(*x)).sum::<f64>(),
        b.values().map(|x| pairs_of(*x)).sum::<f64>(),
    );
    let expected = sa * sb / pairs_of(pairs.len() as f64);
    (index - expected) / ((sa + sb) / 2.0 - expected)
}

/// Every `step`-th text of a labelled benchmark set, preprocessed, and the
/// true topic of every id.
fn benchmark_subset(
    dir: &Path,
    name: &str,
    step: usize,
) -> Option<(PathBuf, HashMap<i64, String>)> {
    let (texts, labels) = benchmark(name)?;
    let raw = dir.join("raw.csv");
    let mut reader = csv::Reader::from_path(&texts).unwrap();
    let mut writer = csv::Writer::from_path(&raw).unwrap();
    writer.write_record(reader.headers().unwrap()).unwrap();
    for record in reader.records().step_by(step) {
        writer.write_record(&record.unwrap()).unwrap();
    }
    writer.flush().unwrap();
    let data = dir.join("clean");
    preprocess(&raw, &data);
    let (topics, not_numbers) = topics_of(&labels);
    assert_eq!(not_numbers, 0, "ids that are not numbers in {labels:?}");
    Some((data, topics))
}

/// `(cluster, true topic)` of every assigned campaign.
fn assigned_topics(data: &Path, topics: &HashMap<i64, String>) -> Vec<(u64, String)> {
    query(data, "SELECT campaign_id, cluster_id FROM assignments")
        .iter()
        .map(|r| {
            (
                r["cluster_id"].as_u64().unwrap(),
                topics[&r["campaign_id"].as_i64().unwrap()].clone(),
            )
        })
        .collect()
}

#[test]
fn dmm_finds_the_topics_of_real_short_texts_and_how_many_there_are() {
    let tmp = tempfile::tempdir().unwrap();
    // A quarter of SearchSnippets: 3,085 web-search snippets of 8 domains.
    let Some((data, topics)) = benchmark_subset(tmp.path(), "searchsnippets", 4) else {
        return;
    };
    let models = tmp.path().join("models");
    adlens()
        .args(["-q", "batch", "--algorithm", "dmm", "--k", "24", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .assert()
        .success()
        .stdout(contains("top terms"));
    let meta = latest_meta(&models);
    assert_eq!(meta["algorithm"], "dmm");
    assert_eq!(meta["dmm"]["k_max"], 24);
    let found = meta["k"].as_u64().unwrap();
    // Without `--beta`, β starts at 0.1 and doubles while the clusters
    // found fill more than half of the bound; the model keeps the last.
    assert_eq!(meta["dmm"]["beta_rule"], "doubling");
    let curve = number_pairs(&meta, "beta_curve");
    assert_eq!(curve[0].0, 0.1, "{curve:?}");
    assert!(
        curve[..curve.len() - 1].iter().all(|(_, n)| 2.0 * n > 24.0),
        "{curve:?}"
    );
    assert_eq!(
        *curve.last().unwrap(),
        (meta["dmm"]["beta"].as_f64().unwrap(), found as f64)
    );
    assert_eq!(scalar(&data, "SELECT count(*) FROM clusters"), found);
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM assignments"),
        scalar(&data, "SELECT count(*) FROM campaigns")
    );
    let pairs = assigned_topics(&data, &topics);
    let (nmi, ari) = (nmi(&pairs), ari(&pairs));
    eprintln!(
        "dmm on a quarter of SearchSnippets: {found} clusters at β {}, NMI {nmi:.3}, ARI {ari:.3}",
        meta["dmm"]["beta"]
    );
    // Measured: 10 clusters at β 0.8, NMI 0.535, ARI 0.436 (β 0.1 alone
    // kept all 24, NMI 0.455, ARI 0.280; k-means with k = 8 on the whole
    // set: NMI 0.159, ARI 0.052). The floors sit between β 0.1's and the
    // rule's; the count must be within 2x the truth.
    assert!((4..=16).contains(&found), "{found} clusters for 8 topics");
    assert!(nmi >= 0.48 && ari >= 0.34, "NMI {nmi:.3}, ARI {ari:.3}");

    // `score` with the saved model gives every campaign the same cluster.
    let before = query(
        &data,
        "SELECT campaign_id, cluster_id, distance FROM assignments ORDER BY campaign_id",
    );
    adlens()
        .args(["-q", "score", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .assert()
        .success();
    let after = query(
        &data,
        "SELECT campaign_id, cluster_id, distance FROM assignments ORDER BY campaign_id",
    );
    assert_eq!(before, after);

    // Without `--k`, dmm's bound is `auto`'s 100, not k-means's 16 (which
    // the β rule would hold to 8 clusters).
    let unbounded = tmp.path().join("models-without-k");
    adlens()
        .args(["-q", "batch", "--algorithm", "dmm", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&unbounded)
        .assert()
        .success();
    let meta = latest_meta(&unbounded);
    assert_eq!(meta["dmm"]["k_max"], 100);
    let found = meta["k"].as_u64().unwrap();
    assert!(
        (4..=50).contains(&found),
        "{found} clusters under a bound of 100"
    );
}

#[test]
fn clusters_recover_the_hidden_topics() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, topics) = prepared(tmp.path(), 8000);
    let models = tmp.path().join("models");
    batch(&data, &models, &[])
        .success()
        .stdout(contains("top terms"));

    let version = latest(&models);
    let meta = latest_meta(&models);
    assert_eq!(meta["k"], 16);
    assert_eq!(meta["clusters"].as_array().unwrap().len(), 16);
    assert!(
        meta["clusters"][0]["top_terms"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );

    let rows_out = scalar(&data, "SELECT count(*) FROM campaigns");
    assert_eq!(scalar(&data, "SELECT count(*) FROM assignments"), rows_out);
    assert_eq!(
        scalar(
            &data,
            &format!("SELECT count(*) FROM assignments WHERE model_version = '{version}'")
        ),
        rows_out
    );
    assert_eq!(scalar(&data, "SELECT count(*) FROM clusters"), 16);
    assert_eq!(scalar(&data, "SELECT sum(size) FROM clusters"), rows_out);

    let assigned = query(&data, "SELECT campaign_id, cluster_id FROM assignments");
    let pairs: Vec<(u64, String)> = assigned
        .iter()
        .map(|r| {
            (
                r["cluster_id"].as_u64().unwrap(),
                topics[&r["campaign_id"].as_i64().unwrap()].clone(),
            )
        })
        .collect();
    let score = nmi(&pairs);
    eprintln!("NMI against the hidden topics: {score:.3}");
    // 16 topics, two of them (Facebook pages, YouTube) nearly trivial: chance
    // is ~0.0, a clustering that only separates those two is ~0.35. This data
    // and seed measured 0.89; 0.75 leaves room for small changes to the
    // generator without letting a broken pipeline through.
    assert!(score >= 0.75, "NMI {score:.3} is too low");
}

#[test]
fn score_gives_the_same_clusters_as_batch_and_runs_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = prepared(tmp.path(), 3000);
    let models = tmp.path().join("models");
    batch(&data, &models, &[]).success();
    let all = "SELECT campaign_id, cluster_id, distance FROM assignments ORDER BY campaign_id";
    let first = query(&data, all);

    adlens()
        .args(["-q", "score", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .assert()
        .success();
    assert_eq!(query(&data, all), first);

    // A second training run on the same data and seed gives the same model.
    batch(&data, &models, &[]).success();
    assert_eq!(query(&data, all), first);
    assert_eq!(
        std::fs::read_dir(&models)
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("model.json").exists())
            .count(),
        2
    );
}

#[test]
fn cron_runs_skip_unchanged_data_never_overlap_and_prune() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = prepared(tmp.path(), 2000);
    let models = tmp.path().join("models");
    batch(&data, &models, &["--if-changed"]).success();
    let first = latest(&models);

    batch(&data, &models, &["--if-changed"])
        .success()
        .stderr(contains("has not changed since the LATEST model"));
    assert_eq!(latest(&models), first);

    // While another run holds the lock, a run does nothing and says so.
    let lock = std::fs::File::open(models.join(".lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    batch(&data, &models, &[])
        .success()
        .stderr(contains("another `adlens batch` is running"));
    drop(lock);
    assert_eq!(latest(&models), first);

    batch(&data, &models, &["--keep", "1"]).success();
    let second = latest(&models);
    assert_ne!(second, first);
    let versions: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("model.json").exists())
        .collect();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].file_name().to_string_lossy(), second);
}

/// Every entry under `dir`, with the contents of its files, for comparing
/// before and after.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for e in std::fs::read_dir(&next).unwrap().flatten() {
            let path = e.path();
            let bytes = if path.is_dir() {
                todo.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).unwrap()
            };
            entries.push((path.strip_prefix(dir).unwrap().to_path_buf(), bytes));
        }
    }
    entries.sort();
    entries
}

#[test]
fn a_failed_step_leaves_latest_and_the_outputs_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = prepared(tmp.path(), 2000);
    let models = tmp.path().join("models");
    batch(&data, &models, &[]).success();
    let first = latest(&models);
    // The clusters step fails: its table's directory no longer looks like
    // an adlens output, which batch refuses to replace.
    std::fs::remove_file(data.join("clusters/_manifest.json")).unwrap();
    let (data_before, models_before) = (snapshot(&data), snapshot(&models));

    batch(&data, &models, &["--seed", "99"])
        .code(1)
        .stderr(contains("clusters").and(contains("is not an adlens output")));
    assert_eq!(latest(&models), first);
    assert!(
        snapshot(&data) == data_before,
        "assignments and clusters are untouched, no staging left"
    );
    assert!(snapshot(&models) == models_before, "no new model version");
}

#[test]
fn bad_requests_are_user_errors() {
    let tmp = tempfile::tempdir().unwrap();
    adlens()
        .args(["batch", "--data"])
        .arg(tmp.path().join("nothing"))
        .arg("--models")
        .arg(tmp.path().join("m"))
        .assert()
        .code(1)
        .stderr(contains("_manifest.json"));
    adlens()
        .args(["score", "--data"])
        .arg(tmp.path())
        .arg("--models")
        .arg(tmp.path().join("m"))
        .assert()
        .code(1)
        .stderr(contains("no model yet; run `adlens batch` first"));
    // dmm's priors must be above zero: refused before anything is read.
    adlens()
        .args(["batch", "--algorithm", "dmm", "--beta", "0", "--data"])
        .arg(tmp.path())
        .assert()
        .failure()
        .stderr(contains("--beta").and(contains("expected a number above 0, got `0`")));
}

#[test]
fn k_auto_picks_the_best_k_of_the_range_and_stores_the_curve() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = prepared(tmp.path(), 2000);
    let models = tmp.path().join("models");
    adlens()
        .args([
            "-q",
            "batch",
            "--k",
            "auto",
            "--k-range",
            "8..=16",
            "--dim",
            "512",
            "--data",
        ])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .assert()
        .success()
        .stderr(contains("chose k="));
    let meta = latest_meta(&models);
    let curve = number_pairs(&meta, "k_curve");
    assert_eq!(
        curve.iter().map(|p| p.0).collect::<Vec<_>>(),
        [8.0, 12.0, 16.0]
    );
    let best = curve.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
    assert_eq!(meta["k"].as_f64(), Some(best));
    assert_eq!(meta["clusters"].as_array().unwrap().len() as f64, best);
}

/// The cleaned campaigns of `data` with their true topics, in topic order
/// (each label's texts together, as MStream's "-T" sets), as documents of
/// online topics that update every `batch` texts.
fn online_over_topic_sorted(
    data: &Path,
    topics: &HashMap<i64, String>,
    batch: usize,
    params: adlens::model::online::OnlineParams,
) -> Vec<(u64, String)> {
    use adlens::model::features::{FeatureParams, TextColumns};
    use adlens::model::online::OnlineTopics;
    use arrow::array::AsArray;
    let mut batches = Vec::new();
    for file in walkdir(&data.join("campaigns")) {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(file).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        batches.extend(reader.map(Result::unwrap));
    }
    let mut rows: Vec<(String, i64, usize, usize)> = Vec::new();
    for (b, rb) in batches.iter().enumerate() {
        let ids = rb
            .column_by_name("campaign_id")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        for i in 0..rb.num_rows() {
            rows.push((topics[&ids.value(i)].clone(), ids.value(i), b, i));
        }
    }
    rows.sort();
    let columns: Vec<TextColumns> = batches
        .iter()
        .map(|b| TextColumns::new(b).unwrap())
        .collect();
    let mut online = OnlineTopics::empty(params, FeatureParams::default());
    let mut pairs = Vec::new();
    for chunk in rows.chunks(batch) {
        let docs: Vec<_> = chunk
            .iter()
            .map(|(_, _, b, i)| online.doc(&columns[*b].row(*i)))
            .collect();
        let assigned = online.update(&docs, None, 0);
        for ((topic, ..), z) in chunk.iter().zip(assigned.topic) {
            pairs.push((u64::from(z), topic.clone()));
        }
    }
    pairs
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn online_topics_find_the_topics_of_topic_sorted_real_texts() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((data, topics)) = benchmark_subset(tmp.path(), "searchsnippets", 4) else {
        return;
    };
    let pairs = online_over_topic_sorted(&data, &topics, 500, adlens::model::online::DEFAULTS);
    assert_eq!(
        pairs.len() as u64,
        scalar(&data, "SELECT count(*) FROM campaigns")
            .as_u64()
            .unwrap()
    );
    let found: std::collections::HashSet<u64> = pairs.iter().map(|(z, _)| *z).collect();
    let (nmi, ari) = (nmi(&pairs), ari(&pairs));
    eprintln!(
        "online on a quarter of SearchSnippets, topic-sorted: {} topics, NMI {nmi:.3}, ARI {ari:.3}",
        found.len()
    );
    // Measured: 24 topics, NMI 0.603, ARI 0.457, where batch dmm on the
    // same texts reaches 0.535 / 0.436 (the test above); at β 0.1, 35
    // topics and 0.528 / 0.306; before the online update dropped the words
    // that link a document to nothing, 78 topics and 0.345 / 0.132. The
    // floors sit between that and β 0.1's.
    assert!(nmi >= 0.44 && ari >= 0.24, "NMI {nmi:.3}, ARI {ari:.3}");
    assert!(found.len() < 60, "{} topics for 8 domains", found.len());
}

#[test]
fn online_topics_keep_a_new_subject_apart_from_the_old_ones() {
    use adlens::model::online::{DEFAULTS, OnlineParams};
    let tmp = tempfile::tempdir().unwrap();
    let Some((data, topics)) = benchmark_subset(tmp.path(), "stackoverflow", 4) else {
        return;
    };
    let measure = |params: OnlineParams| {
        let pairs = online_over_topic_sorted(&data, &topics, 250, params);
        (nmi(&pairs), ari(&pairs))
    };
    let (nmi_fresh, ari_fresh) = measure(DEFAULTS);
    let (nmi_pass, ari_pass) = measure(OnlineParams {
        fresh_topics: 0,
        ..DEFAULTS
    });
    eprintln!(
        "online on a quarter of StackOverflow, topic-sorted: fresh topics NMI {nmi_fresh:.3}, \
         ARI {ari_fresh:.3}; one pass NMI {nmi_pass:.3}, ARI {ari_pass:.3}"
    );
    // A tag is ~250 titles here, so most micro-batches bring a new one.
    // With one pass the first titles of a new tag joined an old topic over
    // a common word and the rest followed them; dealt into fresh topics,
    // they stay apart. Measured: NMI 0.433, ARI 0.208 against 0.226, 0.067
    // (at β 0.1: 0.458, 0.217 against 0.327, 0.134).
    assert!(
        nmi_fresh >= nmi_pass + 0.08,
        "{nmi_fresh:.3} against {nmi_pass:.3}"
    );
    assert!(
        nmi_fresh >= 0.42 && ari_fresh >= 0.18,
        "NMI {nmi_fresh:.3}, ARI {ari_fresh:.3}"
    );
}
