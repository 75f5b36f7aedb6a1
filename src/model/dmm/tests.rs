//! Unit tests of the Dirichlet multinomial mixture: counts, scores, the
//! sampler's determinism and the clusters it finds.

use std::collections::BTreeSet;

use super::*;

fn docs(texts: &[&str]) -> (Vocabulary, Vec<Doc>) {
    let tokens: Vec<Vec<String>> = texts
        .iter()
        .map(|t| t.split_whitespace().map(String::from).collect())
        .collect();
    let vocabulary = Vocabulary::fit(&tokens, 1);
    let docs = tokens
        .iter()
        .map(|t| vocabulary.doc(t.iter().map(String::as_str)).0)
        .collect();
    (vocabulary, docs)
}

/// Counts (α = β = 0.1) of `k` clusters with `docs[i]` in cluster `z_of[i]`.
fn counted(docs: &[Doc], z_of: &[usize], k: usize, vocabulary: usize) -> Counts {
    let mut counts = Counts::new(k, vocabulary, 0.1, 0.1);
    for (doc, z) in docs.iter().zip(z_of) {
        counts.add(doc, *z);
    }
    counts
}

fn params(k_max: usize) -> DmmParams {
    DmmParams {
        k_max,
        alpha: 0.1,
        beta: 0.1,
        iterations: 30,
        seed: 7,
        beta_rule: BetaRule::Fixed,
    }
}

#[test]
fn separates_topics_and_empties_spare_clusters() {
    // Three topics of 30 texts; each text adds one of ten rarer words.
    let mut texts = Vec::new();
    for i in 0..30 {
        for topic in [
            "cheap flights hotel",
            "running shoes sale",
            "python error index",
        ] {
            texts.push(format!("{topic} {}{}", &topic[..2], i % 10));
        }
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (vocabulary, docs) = docs(&texts);
    let trained = train(&docs, vocabulary.len(), &params(9));
    assert_eq!(trained.counts.clusters(), 3, "{:?}", trained.counts.docs);
    assert_eq!(trained.counts.docs, vec![30, 30, 30]);
    for topic in 0..3 {
        let z = trained.assignments[topic];
        assert!((topic..90).step_by(3).all(|i| trained.assignments[i] == z));
    }
}

/// Three domains of four sub-topics: each text is two of its domain's four
/// words and two of its sub-topic's three, drawn by a seeded generator.
fn domains_of_sub_topics() -> Vec<String> {
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    let mut texts = Vec::new();
    for domain in ["sport", "health", "money"] {
        for sub in 0..4 {
            for _ in 0..25 {
                let mut words: Vec<String> = Vec::new();
                while words.len() < 4 {
                    let word = if words.len() < 2 {
                        format!("{domain}{}", rng.random_range(0..4))
                    } else {
                        format!("{domain}{sub}x{}", rng.random_range(0..3))
                    };
                    if !words.contains(&word) {
                        words.push(word);
                    }
                }
                texts.push(words.join(" "));
            }
        }
    }
    texts
}

#[test]
fn beta_doubles_until_the_clusters_leave_half_the_bound_empty() {
    let texts = domains_of_sub_topics();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (vocabulary, docs) = docs(&texts);
    let fixed = train(&docs, vocabulary.len(), &params(12));
    // At β 0.1 the sub-topics are clusters: 9 of the 12 slots are kept.
    assert_eq!(fixed.beta_trials, [(0.1, 9)]);
    assert_eq!((fixed.counts.beta, fixed.counts.clusters()), (0.1, 9));

    let doubling = DmmParams {
        beta_rule: BetaRule::Doubling,
        ..params(12)
    };
    let settled = train(&docs, vocabulary.len(), &doubling);
    // The same first run (same seed), then β doubled while more than 6 of
    // the 12 slots were kept.
    assert_eq!(settled.beta_trials, [(0.1, 9), (0.2, 9), (0.4, 6)]);
    assert_eq!((settled.counts.beta, settled.counts.clusters()), (0.4, 6));
    // Sub-topics joined within their domain, whole, never across domains.
    for z in 0..6 {
        let members: Vec<usize> = (0..texts.len())
            .filter(|i| settled.assignments[*i] as usize == z)
            .collect();
        let domains: BTreeSet<usize> = members.iter().map(|i| i / 100).collect();
        assert_eq!(domains.len(), 1, "cluster {z}: domains {domains:?}");
        assert_eq!(members.len() % 25, 0, "cluster {z} splits a sub-topic");
    }
}

#[test]
fn a_merge_gain_is_the_change_in_the_log_joint() {
    let (vocabulary, docs) = docs(&[
        "cheap flights hotel",
        "cheap hotel deals",
        "flights hotel rome",
        "running shoes sale",
        "shoes sale cheap",
        "python error index",
    ]);
    let z_of = [0, 1, 0, 2, 2, 3];
    let counts = counted(&docs, &z_of, 4, vocabulary.len());
    let before = counts.log_joint(4);
    let gains = counts.merge_gains();
    assert_eq!(gains.len(), 6, "every pair of the 4 clusters");
    for (gain, a, b) in gains {
        let mut merged = counts.clone();
        for (doc, &z) in docs.iter().zip(&z_of) {
            if z == b {
                merged.remove(doc, b);
                merged.add(doc, a);
            }
        }
        let change = merged.log_joint(4) - before;
        assert!((gain - change).abs() < 1e-9, "{a}+{b}: {gain} vs {change}");
    }
}

#[test]
fn a_subject_split_over_two_clusters_is_merged_and_others_are_not() {
    let mut texts = Vec::new();
    for i in 0..20 {
        texts.push(format!("cheap flights hotel deal{}", i % 5));
        texts.push(format!("python error index trace{}", i % 5));
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (vocabulary, docs) = docs(&texts);
    // Flights split over clusters 0 and 2; python alone in 1.
    let split: Vec<usize> = (0..docs.len())
        .map(|i| {
            if i % 2 == 1 {
                1
            } else if i % 4 == 0 {
                0
            } else {
                2
            }
        })
        .collect();
    let mut counts = counted(&docs, &split, 3, vocabulary.len());
    let mut z_of: Vec<u32> = split.iter().map(|z| *z as u32).collect();
    merge_clusters(&docs, &mut counts, &mut z_of);
    assert_eq!(counts.docs, [20, 20, 0]);
    assert!(z_of.iter().step_by(2).all(|z| *z == 0), "{z_of:?}");
    assert!(z_of.iter().skip(1).step_by(2).all(|z| *z == 1), "{z_of:?}");
}

#[test]
fn the_log_table_is_bit_for_bit_the_logarithm() {
    let mut table = LnTable::new();
    for offset in [0.1, 0.003, 2.5] {
        table.offset_by(offset);
        for n in [0u64, 1, 7, 4095, 4096, 70_000, (LnTable::MAX as u64) + 3] {
            assert_eq!(
                table.ln(n).to_bits(),
                (n as f64 + offset).ln().to_bits(),
                "n {n}, offset {offset}"
            );
        }
    }
}

#[test]
fn counts_add_and_remove_exactly() {
    let (vocabulary, docs) = docs(&["a b b", "b c"]);
    let mut counts = counted(&docs, &[1, 1], 2, vocabulary.len());
    assert_eq!(counts.tokens, vec![0, 5]);
    assert_eq!(counts.words[1], vec![(1, 3)]);
    counts.remove(&docs[0], 1);
    assert_eq!(counts.words, vec![vec![], vec![(1, 1)], vec![(1, 1)]]);
    assert_eq!(counts.docs, vec![0, 1]);
}

#[test]
fn putting_a_document_back_is_removing_and_adding_it() {
    // "a" is shared by clusters 0 and 1, "c" is only in the second document
    // (cluster 1): entries that stay, and one that goes and comes back.
    let (vocabulary, docs) = docs(&["a b", "a a c", "a b b"]);
    let mut counts = counted(&docs, &[0, 1, 1], 2, vocabulary.len());
    let mut expected = counts.clone();
    expected.remove(&docs[1], 1);
    expected.add(&docs[1], 1);
    let mut marks = Vec::new();
    counts.remove_marked(&docs[1], 1, &mut marks);
    assert_eq!(marks, vec![1, GONE], "a at index 1, c dropped");
    counts.put_back(&docs[1], 1, &marks);
    assert_eq!(counts, expected);
}

#[test]
fn log_scores_match_the_formula() {
    let (vocabulary, docs) = docs(&["a b b", "b c", "a a"]);
    let mut counts = Counts::new(2, vocabulary.len(), 0.5, 0.2);
    counts.add(&docs[1], 0);
    counts.add(&docs[2], 1);
    let mut scores = Vec::new();
    counts.log_scores(&docs[0], &mut scores);
    // By hand, dropping the constant Π_w Π_j (β + j) of the document.
    let (vb, beta): (f64, f64) = (3.0 * 0.2, 0.2);
    let empty_words = beta.ln() + beta.ln() + (beta + 1.0).ln();
    let z0 = (1.5f64).ln() + beta.ln() + (1.2f64).ln() + (2.2f64).ln()
        - ((2.0 + vb) * (3.0 + vb) * (4.0 + vb)).ln();
    let z1 = (1.5f64).ln() + (2.2f64).ln() + beta.ln() + (beta + 1.0).ln()
        - ((2.0 + vb) * (3.0 + vb) * (4.0 + vb)).ln();
    assert!((scores[0] - (z0 - empty_words)).abs() < 1e-9, "{scores:?}");
    assert!((scores[1] - (z1 - empty_words)).abs() < 1e-9, "{scores:?}");
}

#[test]
fn the_same_seed_gives_the_same_clusters() {
    let texts: Vec<String> = (0..200)
        .map(|i| format!("w{} w{} x{}", i % 7, i % 5, i % 3))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (vocabulary, docs) = docs(&refs);
    let a = train(&docs, vocabulary.len(), &params(20));
    let b = train(&docs, vocabulary.len(), &params(20));
    assert_eq!(a.assignments, b.assignments);
    assert_eq!(a.counts, b.counts);
}

#[test]
fn outliers_have_a_lower_per_token_likelihood() {
    let (vocabulary, docs) = docs(&["a b", "a b", "a c", "d e"]);
    let mut counts = Counts::new(1, vocabulary.len(), 0.1, 0.1);
    for d in &docs[..3] {
        counts.add(d, 0);
    }
    let typical = counts.per_token_log_likelihood(&docs[0], 0, 0);
    let odd = counts.per_token_log_likelihood(&docs[3], 0, 0);
    let unknown = counts.per_token_log_likelihood(&Doc::default(), 2, 0);
    assert!(
        typical > odd && odd > unknown - 1e-12,
        "{typical} {odd} {unknown}"
    );
}
