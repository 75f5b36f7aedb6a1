//! The duplicate pass at a size that does not fit its memory limit: it must
//! split the ids into several passes instead of failing, and keep exactly the
//! rows the rule says (computed here independently of adlens).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::support::{balanced_counts, manifest, preprocess_with, query, scalar};

/// Rows of the generated dump and distinct ids among them.
const ROWS: u64 = 600_000;
const IDS: u64 = 150_000;

/// A dump where every id occurs four times, at one of five timestamps (so
/// newest-wins and the first-line tie-break both decide), with no title or
/// description so the run spends its time on the duplicates. Returns the dump
/// and, for each id, the line the rule keeps.
fn dump_with_duplicates(dir: &Path) -> (std::path::PathBuf, HashMap<u64, u64>) {
    let mut text = String::from("creation_time,id,url,title,keywords,description\n");
    let mut winners: HashMap<u64, (u64, u64)> = HashMap::new();
    for i in 0..ROWS {
        let id = 1_000_000 + (i * 7919) % IDS;
        let day = 1 + (i * 31 + i / 3) % 5;
        let line = i + 2;
        writeln!(
            text,
            "2023-03-{day:02} 10:00:00.000000,{id},https://shop{}.example.com/p,,kw{},-",
            i % 97,
            i % 13
        )
        .unwrap();
        let best = winners.entry(id).or_insert((day, line));
        if day > best.0 {
            *best = (day, line);
        }
    }
    let path = dir.join("dups.csv");
    std::fs::write(&path, text).unwrap();
    let winners = winners
        .into_iter()
        .map(|(id, (_, line))| (id, line))
        .collect();
    (path, winners)
}

#[test]
fn a_tiny_memory_limit_makes_more_passes_not_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, winners) = dump_with_duplicates(tmp.path());
    let out = tmp.path().join("clean");
    preprocess_with(&[raw.as_os_str()], &out, &["--memory-limit", "16MiB"]);

    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], ROWS);
    assert_eq!(counts["rows_out"], IDS);
    assert_eq!(counts["rejected"], 0);
    assert_eq!(counts["duplicates_dropped"], ROWS - IDS);
    // 600k keys do not fit in 16 MiB: the ids were split by hash.
    assert!(manifest(&out)["settings"]["dedup_passes"].as_u64().unwrap() >= 2);

    // Exactly the rule's winners, re-read from the Parquet output.
    let kept: HashMap<u64, u64> = query(&out, "SELECT campaign_id, source_line FROM campaigns")
        .iter()
        .map(|r| {
            (
                r["campaign_id"].as_u64().unwrap(),
                r["source_line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(kept.len() as u64, IDS, "an id is kept twice");
    assert_eq!(kept, winners);
}

#[test]
fn the_same_file_twice_keeps_the_first_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("a.csv");
    std::fs::copy(crate::support::fixture("dirty.csv"), &raw).unwrap();
    let out = tmp.path().join("clean");
    preprocess_with(&[raw.as_os_str(), raw.as_os_str()], &out, &[]);
    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], 22);
    // The fixture alone keeps 4 rows and drops 2 duplicates.
    assert_eq!(counts["rows_out"], 4);
    assert_eq!(counts["duplicates_dropped"], 2 + 4 + 2);
    // Every kept id occurs in both copies: every kept row was staged.
    assert_eq!(manifest(&out)["settings"]["dedup_rows_staged"], 4 + 8);
    assert_eq!(scalar(&out, "SELECT count(*) FROM campaigns"), 4);
    assert_eq!(
        scalar(
            &out,
            "SELECT count(*) FROM campaigns WHERE source_input = 0"
        ),
        4
    );
}
