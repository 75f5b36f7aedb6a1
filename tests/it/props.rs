//! Property tests: every function that takes outside text is total. Arbitrary
//! Unicode goes to every cleaning rule and the feature tokenizer, arbitrary
//! bytes to the CSV splitter and the Kafka message decoder, and any text to
//! the parsers of data locations and cluster URLs; a panic anywhere
//! fails the test. Outputs are also checked for the promises they make.

use adlens::clean::{lang, text, url};
use adlens::csv_records::{Record, RecordSplitter};
use adlens::distributed::ClusterUrl;
use adlens::id_scan;
use adlens::model::dmm::{self, BetaRule, DmmParams, Vocabulary};
use adlens::model::features::{CampaignText, FeatureParams};
use adlens::model::online::{EventKind, Forget, OnlineParams, OnlineTopics};
use adlens::record::RAW_FIELDS;
use adlens::storage::{self, Location};
use adlens::stream::decode::{Envelope, InputFormat, decode};
use proptest::prelude::*;

/// Text shaped like URLs: schemes, hosts, paths, query pairs with any
/// characters, so the URL rules get past their first checks.
fn url_like() -> impl Strategy<Value = String> {
    let part = "\\PC{0,12}";
    (
        prop::sample::select(vec!["https://", "http://", "HTTP://", "", "ftp://", "//"]),
        "[a-z0-9.\\-\\[\\]:]{0,20}",
        part,
        prop::collection::vec((part, part), 0..4),
        prop::option::of(part),
    )
        .prop_map(|(scheme, host, path, pairs, fragment)| {
            let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut url = format!("{scheme}{host}/{path}");
            if !query.is_empty() {
                url += &format!("?{}", query.join("&"));
            }
            if let Some(f) = fragment {
                url += &format!("#{f}");
            }
            url
        })
}

/// Records whose first two fields take the forms that make ids hard to
/// find: quotes, doubled quotes, line breaks inside quotes, stray quotes,
/// spaces and signs, ended by any line break.
fn records_with_odd_ids() -> impl Strategy<Value = Vec<u8>> {
    let stamp = prop::sample::select(vec!["t", "\"t\"", "\"t,u\"", "\"t\n\"", "\"t", "", "t\""]);
    let id = prop::sample::select(vec![
        "42",
        " 42 ",
        "\"42\"",
        "\"42\n\"",
        "\"\r\n42\"",
        "\"4\"2",
        "\"4\"\"2\"",
        "+42",
        "\"42",
        "7",
        "\t7\r",
        "\"7\n\n\"",
        "",
    ]);
    let end = prop::sample::select(vec!["\n", "\r\n", "\r", "\n\n", ""]);
    prop::collection::vec((stamp, id, "[a-z,\"\n]{0,6}", end), 0..12).prop_map(|records| {
        records
            .into_iter()
            .map(|(stamp, id, tail, end)| format!("{stamp},{id},{tail}{end}"))
            .collect::<String>()
            .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn url_rules_are_total(raw in prop_oneof![url_like(), any::<String>()]) {
        if let Some(canonical) = url::canonical_url(&raw) {
            prop_assert!(canonical.starts_with("http://") || canonical.starts_with("https://"));
            // Canonical URLs are fixed points: cleaning twice changes nothing.
            let again = url::canonical_url(&canonical);
            prop_assert_eq!(again.as_deref(), Some(canonical.as_ref()));
            if let Some(host) = url::url_host(&canonical) {
                let _ = url::registered_domain(host);
            }
        }
        let _ = url::is_tracking_param(&raw);
        let _ = url::url_host(&raw);
        let _ = url::registered_domain(&raw);
    }

    #[test]
    fn campaign_tags_is_total(
        title in proptest::option::of(any::<String>()),
        description in proptest::option::of(any::<String>()),
        domain in proptest::option::of(prop_oneof![Just("youtube.com".to_string()), any::<String>()]),
    ) {
        let _ = lang::campaign_tags(title.as_deref(), description.as_deref(), domain.as_deref());
    }

    #[test]
    fn text_rules_are_total(raw in any::<String>(), max in 0usize..64) {
        if let Some(clean) = text::normalize_text(&raw) {
            prop_assert!(!clean.is_empty());
            prop_assert_eq!(clean.trim(), clean.as_ref());
        }
        for keyword in text::split_keywords(&raw) {
            prop_assert!(!keyword.is_empty());
        }
        let _ = lang::text_script(&raw);
        let _ = lang::detect_language(&raw);
        let cut = text::truncate_at_char(&raw, max);
        prop_assert!(cut.len() <= max && raw.starts_with(cut));
    }

    #[test]
    fn feature_tokens_are_total(title in any::<String>(), keyword in any::<String>()) {
        let text = CampaignText {
            title: Some(&title),
            keywords: vec![&keyword],
            description: Some(&keyword),
            domain: Some(&title),
            host: Some(&keyword),
            url: Some(&title),
        };
        let vector = text.term_frequencies(&FeatureParams::default());
        prop_assert!(vector.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn the_csv_splitter_is_total_and_loses_no_line(bytes in prop::collection::vec(
        prop_oneof![Just(b'"'), Just(b','), Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()], 0..400),
        chunk in 1usize..64) {
        let mut splitter = RecordSplitter::new(bytes.as_slice());
        let mut records = Vec::new();
        let mut last_line = 0;
        while let Some(record) = splitter.next_record().unwrap() {
            // A bare `\r` ends a record without starting a line.
            prop_assert!(record.line() >= last_line.max(1), "lines never go back");
            last_line = record.line();
            if let Record::Fields { fields, .. } = &record {
                prop_assert!(!fields.is_empty());
            }
            records.push(record);
        }
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        prop_assert!(last_line <= lines);
        // Reading in small pieces splits the same records.
        let mut small = RecordSplitter::with_chunk(bytes.as_slice(), chunk);
        let mut again = Vec::new();
        while let Some(record) = small.next_record().unwrap() {
            again.push(record);
        }
        prop_assert_eq!(again, records);
    }

    /// Every id the reader gives a record is among those the id scan finds
    /// (as often or more), however the file is cut into ranges: a record
    /// the scan misses would be written unstaged next to its duplicate.
    /// Only a record of all six fields gets an id (others are `ragged_row`):
    /// one whose quoted id runs to the end of the file has two, and the
    /// scan rightly gives it none.
    #[test]
    fn the_id_scan_sees_every_id_the_reader_finds(bytes in prop_oneof![
            prop::collection::vec(prop_oneof![Just(b'"'), Just(b','), Just(b'\n'), Just(b'\r'),
                Just(b' '), Just(b'+'), b'0'..=b'9', Just(b'a'), any::<u8>()], 0..400),
            records_with_odd_ids()],
        parts in 1u64..6) {
        let mut splitter = RecordSplitter::new(bytes.as_slice());
        let mut expected = Vec::new();
        while let Some(record) = splitter.next_record().unwrap() {
            // A line break in the timestamp makes it `bad_timestamp`.
            if let Record::Fields { fields, .. } = record
                && fields.len() == RAW_FIELDS.len()
                && !fields[0].contains(['\r', '\n'])
                && let Some(id) = id_scan::id_value(fields[1].as_bytes())
            {
                expected.push(id);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.csv");
        std::fs::write(&path, &bytes).unwrap();
        let found = id_scan::ids(&[path], parts, usize::MAX).unwrap().unwrap();
        for id in &expected {
            let want = expected.iter().filter(|&x| x == id).count();
            let got = found.iter().filter(|&x| x == id).count();
            prop_assert!(got >= want, "id {} read {} times, scanned {}", id, want, got);
        }
    }

    #[test]
    fn the_message_decoder_is_total(payloads in prop::collection::vec(
        prop_oneof![
            any::<Vec<u8>>(),
            any::<String>().prop_map(String::into_bytes),
            Just(br#"{"creation_time":"2023-01-01","id":1,"url":null,"title":["a"],"keywords":{},"description":true}"#.to_vec()),
        ], 0..8), csv in any::<bool>()) {
        let messages: Vec<Envelope> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| Envelope { partition: 0, offset: i as i64, key: None, size: payload.len(), payload })
            .collect();
        let format = if csv { InputFormat::Csv } else { InputFormat::Json };
        let decoded = decode(format, "t", &messages, 1 << 20);
        // Every message is a row or a rejection, never both, never neither.
        prop_assert_eq!(decoded.raw.num_rows() + decoded.rejected.len(), messages.len());
    }

    #[test]
    fn dmm_training_and_scoring_are_total(texts in prop::collection::vec(any::<String>(), 1..12), probe in any::<String>(), k_max in 1usize..6) {
        let tokens_of = |text: &str| {
            let mut tokens = Vec::new();
            let campaign = CampaignText { title: Some(text), ..CampaignText::default() };
            campaign.for_each_token(&FeatureParams::default(), |t, _| tokens.push(t.to_string()));
            tokens
        };
        let tokens: Vec<Vec<String>> = texts.iter().map(|t| tokens_of(t)).collect();
        let vocabulary = Vocabulary::fit(&tokens, 1);
        let docs: Vec<dmm::Doc> = tokens.iter().map(|t| vocabulary.doc(t.iter().map(String::as_str)).0).filter(|d| d.len > 0).collect();
        let params = DmmParams { k_max, alpha: 0.1, beta: 0.1, iterations: 3, seed: 1, beta_rule: BetaRule::Doubling };
        let trained = dmm::train(&docs, vocabulary.len(), &params);
        prop_assert_eq!(trained.assignments.len(), docs.len());
        prop_assert!(trained.counts.clusters() <= k_max);
        prop_assert_eq!(trained.counts.docs.iter().sum::<u64>(), docs.len() as u64);
        if trained.counts.clusters() > 0 {
            let probe = tokens_of(&probe);
            let (doc, unknown) = vocabulary.doc(probe.iter().map(String::as_str));
            let z = trained.counts.most_probable(&doc, &mut Vec::new());
            prop_assert!(z < trained.counts.clusters());
            prop_assert!(trained.counts.per_token_log_likelihood(&doc, unknown, z).is_finite());
        }
    }

    #[test]
    fn online_topics_take_any_text(batches in prop::collection::vec(prop::collection::vec(any::<String>(), 0..8), 1..5), forget in 1u64..3, fresh_topics in 0usize..4) {
        let params = OnlineParams { alpha: 0.01, beta: 0.1, iterations: 2, fresh_topics, forget: Forget::Batches(forget), min_topic_size: 2, seed: 3 };
        let mut topics = OnlineTopics::empty(params, FeatureParams::default());
        let mut seen = std::collections::HashSet::new();
        for (i, texts) in batches.iter().enumerate() {
            let docs: Vec<dmm::Doc> = texts.iter().map(|t| topics.doc(&CampaignText { title: Some(t), ..CampaignText::default() })).collect();
            let a = topics.update(&docs, None, i as i64);
            prop_assert_eq!(a.topic.len(), docs.len());
            prop_assert!(a.topic.iter().all(|t| a.labels.contains_key(t)));
            prop_assert!(a.distance.iter().all(|d| !d.is_nan()));
            for e in a.events.iter().filter(|e| e.event == EventKind::Born) {
                // Ids are never reused: each is born once.
                prop_assert!(seen.insert(e.topic));
            }
        }
    }

    #[test]
    fn locations_and_cluster_urls_are_total(raw in prop_oneof![
        any::<String>(),
        "(s3|df|file|gs|http)://\\PC{0,16}(:[0-9]{0,6})?(/\\PC{0,12})?",
    ]) {
        if let Ok(Location::Store(url)) = raw.parse::<Location>() {
            // A store prefix is a directory and names its bucket.
            prop_assert!(url.path().ends_with('/'));
            prop_assert!(url.host_str().is_some_and(|h| !h.is_empty()));
        }
        if let Ok(cluster) = raw.parse::<ClusterUrl>() {
            prop_assert_eq!(cluster.to_string().parse::<ClusterUrl>(), Ok(cluster));
        }
    }

    #[test]
    fn store_errors_are_described_on_one_line(raw in any::<String>(), code in "[A-Za-z]{0,12}") {
        let error = format!("{raw}: Server returned 404<?xml version=\"1.0\"?>\n<Error><Code>{code}</Code></Error>");
        let line = storage::describe(&error);
        prop_assert!(!line.contains('\n'));
        prop_assert!(!storage::describe(&raw).contains('\n'));
        if !code.is_empty() {
            let tail = format!("({code})");
            prop_assert!(line.ends_with(&tail));
        }
    }
}
