//! Hostile input: `tests/data/hostile.csv` mixes every way a record can go
//! wrong (a stray quote, bad bytes, a non-ASCII URL parameter name, quoted
//! newlines, CRLF, a byte-order mark, RTL text, emoji, duplicates). Nothing
//! may crash and no record may vanish: each line is accounted for exactly.

use std::collections::BTreeMap;

use serde_json::json;

use crate::support::{adlens, balanced_counts, fixture, preprocess, query, scalar};

#[test]
fn preprocess_accounts_for_every_hostile_record() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("hostile.csv"), &out);

    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], 15);
    assert_eq!(counts["rows_out"], 8);
    assert_eq!(counts["duplicates_dropped"], 1);
    assert_eq!(
        counts["rejected_by_reason"],
        json!({"unbalanced_quote": 1, "bad_encoding": 1, "ragged_row": 1, "bad_id": 1,
               "bad_timestamp": 1, "empty_text": 1})
    );

    // Counted independently: re-read what was written.
    assert_eq!(scalar(&out, "SELECT count(*) FROM campaigns"), 8);
    let rejects: BTreeMap<i64, String> = query(
        &out,
        "SELECT source_line, reject_reason FROM rejects ORDER BY source_line",
    )
    .iter()
    .map(|r| {
        (
            r["source_line"].as_i64().unwrap(),
            r["reject_reason"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    let expected: BTreeMap<i64, String> = [
        (3, "unbalanced_quote"),
        (7, "bad_encoding"),
        (11, "ragged_row"),
        (12, "bad_id"),
        (13, "bad_timestamp"),
        (14, "empty_text"),
    ]
    .into_iter()
    .map(|(l, r)| (l, r.to_string()))
    .collect();
    assert_eq!(rejects, expected);

    let kept: Vec<(i64, i64)> = query(
        &out,
        "SELECT campaign_id, source_line FROM campaigns ORDER BY campaign_id",
    )
    .iter()
    .map(|r| {
        (
            r["campaign_id"].as_i64().unwrap(),
            r["source_line"].as_i64().unwrap(),
        )
    })
    .collect();
    // The three records after the stray quote survive; 2002's newer copy wins.
    assert_eq!(
        kept,
        [
            (2001, 2),
            (2002, 15),
            (2003, 5),
            (2004, 6),
            (2006, 8),
            (2007, 10),
            (2011, 16),
            (2012, 17)
        ]
    );
}

#[test]
fn hostile_values_are_cleaned_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("hostile.csv"), &out);
    let row = |id: i64| {
        query(
            &out,
            &format!("SELECT url, host, title, keywords, description FROM campaigns WHERE campaign_id = {id}"),
        )
        .remove(0)
    };
    // A non-ASCII parameter name is kept, the tracking parameter dropped.
    let jp = row(2001);
    assert_eq!(jp["host"], "shop.example.jp");
    let url = jp["url"].as_str().unwrap();
    assert!(!url.contains("utm_source"), "{url}");
    assert!(url.contains("=1"), "{url}");
    assert_eq!(jp["keywords"], json!(["toys", "木"]));
    // A quoted newline is kept inside its field, and doubled quotes undone.
    let quoted = row(2006);
    assert_eq!(quoted["title"], "Quoted newline title");
    assert_eq!(quoted["description"], "say \"hi\"");
    assert!(row(2011).get("url").is_none_or(|u| u.is_null()));
    // The bad bytes are shown in the rejects, replaced, not dropped.
    let raw = scalar(
        &out,
        "SELECT raw_text FROM rejects WHERE reject_reason = 'bad_encoding'",
    );
    assert!(
        raw.as_str().unwrap().contains("Caf\u{fffd} latin-1"),
        "{raw}"
    );
}

#[test]
fn a_field_over_the_limit_is_rejected_and_the_run_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("huge.csv");
    let mut text = String::from("creation_time,id,url,title,keywords,description\n");
    text += "2023-05-01 00:00:00,1,https://a.example.com/,small,kw,d\n";
    text += &format!(
        "2023-05-01 00:00:00,2,https://a.example.com/,{},kw,d\n",
        "x".repeat((1 << 20) + 1)
    );
    text += "2023-05-01 00:00:00,3,https://a.example.com/,after,kw,d\n";
    std::fs::write(&path, text).unwrap();
    let out = tmp.path().join("clean");
    preprocess(&path, &out);
    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], 3);
    assert_eq!(counts["rows_out"], 2);
    assert_eq!(counts["rejected_by_reason"], json!({"field_too_large": 1}));
}

#[test]
fn produce_accepts_the_header_preprocess_accepts() {
    // With `--limit 0` nothing is sent, so no broker is needed: only the
    // header is checked (a byte-order mark, capitals and spaces here).
    adlens()
        .args([
            "produce",
            "--brokers",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--limit",
            "0",
            "--file",
        ])
        .arg(fixture("hostile.csv"))
        .assert()
        .success();
}
