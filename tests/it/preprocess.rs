//! `adlens preprocess` end to end: counts, cleaned values, duplicates,
//! rejects, atomic replacement and repeatability.

use serde_json::json;

use crate::support::{
    adlens, assert_no_staging, balanced_counts, fixture, generate, gzip, manifest, preprocess,
    preprocess_with, query, scalar,
};

#[test]
fn dirty_fixture_lands_every_record_somewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);

    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], 11);
    assert_eq!(counts["rows_out"], 4);
    assert_eq!(counts["duplicates_dropped"], 2);
    assert_eq!(
        counts["rejected_by_reason"],
        json!({"bad_id": 1, "bad_timestamp": 2, "empty_text": 1, "ragged_row": 1})
    );

    let rejects = query(
        &out,
        "SELECT source_line, reject_reason, raw_text FROM rejects ORDER BY source_line",
    );
    let lines: Vec<_> = rejects
        .iter()
        .map(|r| {
            (
                r["source_line"].as_i64().unwrap(),
                r["reject_reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (5, "ragged_row"),
            (6, "bad_timestamp"),
            (7, "bad_id"),
            (9, "empty_text"),
            (12, "bad_timestamp")
        ]
    );
    assert_eq!(
        rejects[0]["raw_text"],
        "2023-03-01 10:00:02.000000,1003,https://x.example.com/,only,five"
    );
}

#[test]
fn dirty_fixture_values_are_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);
    let rows = query(
        &out,
        "SELECT campaign_id, url, host, domain, title, keywords, description, month, source_line \
         FROM campaigns ORDER BY campaign_id",
    );
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r["campaign_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1001, 1002, 1007, 1009]);

    // The newest record of id 1001 wins; its tracking parameter and :443 are gone.
    assert_eq!(rows[0]["title"], "New version");
    assert_eq!(rows[0]["source_line"], 8);
    assert_eq!(rows[0]["url"], "https://www.example.co.uk/a");
    assert_eq!(rows[0]["domain"], "example.co.uk");
    // An l.facebook.com shim is unwrapped; "-" means no description.
    assert_eq!(rows[1]["url"], "https://shop.example.de/p?x=1");
    assert_eq!(rows[1]["host"], "shop.example.de");
    assert_eq!(rows[1]["title"], "Multi line title");
    assert!(rows[1].get("description").is_none_or(|d| d.is_null()));
    // Equal timestamps: the first line wins. Invisible characters are removed, NFKC applied.
    assert_eq!(rows[2]["source_line"], 10);
    assert_eq!(rows[2]["title"], "Zerowidth title");
    assert_eq!(rows[2]["description"], "Café III");
    assert_eq!(rows[2]["url"], "http://www.shop.example.com.br/x");
    assert_eq!(rows[2]["domain"], "example.com.br");
    assert_eq!(rows[2]["month"], "2023-02");
    // A record without a usable URL is kept, with no canonical URL.
    assert!(rows[3].get("url").is_none_or(|u| u.is_null()));

    let keywords = scalar(
        &out,
        "SELECT keywords FROM campaigns WHERE campaign_id = 1001",
    );
    assert_eq!(keywords, json!(["sale", "neu"]));
    assert_eq!(
        scalar(
            &out,
            "SELECT keywords FROM campaigns WHERE campaign_id = 1002"
        ),
        json!([])
    );
}

#[test]
fn generated_dump_balances_and_has_no_duplicate_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = generate(tmp.path(), 6000, 11, 0.05);
    let out = tmp.path().join("clean");
    // Twelve batches, not the default's one: the reader's cuts and the
    // partitions' share of them are part of what must balance.
    preprocess_with(&[raw.as_os_str()], &out, &["--batch-size", "500"]);

    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], 6000);
    let reasons = counts["rejected_by_reason"].as_object().unwrap();
    for reason in ["ragged_row", "bad_timestamp", "bad_id", "empty_text"] {
        assert!(
            reasons.get(reason).and_then(|v| v.as_u64()).unwrap_or(0) > 0,
            "no `{reason}` in {reasons:?}"
        );
    }
    assert!(counts["duplicates_dropped"].as_u64().unwrap() > 0);
    assert_eq!(
        scalar(&out, "SELECT count(*) FROM campaigns"),
        counts["rows_out"]
    );
    assert_eq!(
        scalar(&out, "SELECT count(DISTINCT campaign_id) FROM campaigns"),
        counts["rows_out"]
    );
    assert_eq!(
        scalar(&out, "SELECT count(*) FROM rejects"),
        counts["rejected"]
    );
    assert_eq!(
        scalar(&out, "SELECT count(DISTINCT month) FROM campaigns"),
        12
    );
    // Only the rows whose id the dump repeats went through the duplicate
    // pass: the losers, and the winners whose id occurs more than once
    // (counted here from the CSV itself).
    let mut seen: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(&raw)
        .unwrap();
    for record in reader.records() {
        if let Some(id) = record.unwrap().get(1).and_then(|f| f.trim().parse().ok()) {
            *seen.entry(id).or_default() += 1;
        }
    }
    let winners_repeated = query(&out, "SELECT campaign_id FROM campaigns")
        .iter()
        .filter(|row| seen[&row["campaign_id"].as_i64().unwrap()] > 1)
        .count() as u64;
    assert_eq!(
        manifest(&out)["settings"]["dedup_rows_staged"],
        counts["duplicates_dropped"].as_u64().unwrap() + winners_repeated
    );
    // Redirect wrappers and tracking parameters never survive cleaning.
    let leftovers = "SELECT count(*) FROM campaigns WHERE url LIKE '%fbclid=%' OR url LIKE '%utm_%' \
                     OR url LIKE '%/login/?next=%' OR url LIKE '%l.php?u=%' OR url LIKE '%:443/%'";
    assert_eq!(scalar(&out, leftovers), 0);
    // Non-English text is kept and labelled.
    let scripts = query(
        &out,
        "SELECT DISTINCT script FROM campaigns WHERE script IS NOT NULL",
    );
    for script in ["Latin", "Devanagari", "Cyrillic", "Arabic"] {
        assert!(
            scripts.iter().any(|r| r["script"] == script),
            "no {script} in {scripts:?}"
        );
    }
}

#[test]
fn rerunning_gives_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = generate(tmp.path(), 3000, 3, 0.02);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    preprocess(&raw, &a);
    preprocess(&raw, &b);
    let all = "SELECT * FROM campaigns ORDER BY campaign_id";
    assert_eq!(query(&a, all), query(&b, all));
    assert_eq!(manifest(&a)["counts"], manifest(&b)["counts"]);
}

#[test]
fn a_failed_run_leaves_the_previous_output_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);
    let before = std::fs::read_to_string(out.join("_manifest.json")).unwrap();

    // A good input of thousands of lines, then one with a wrong header:
    // fails mid-way.
    let good = generate(tmp.path(), 3000, 5, 0.0);
    let bad_path = tmp.path().join("bad.csv");
    std::fs::write(&bad_path, "time,id\n2023-05-01,42\n").unwrap();
    adlens()
        .args(["--quiet", "preprocess", "--input"])
        .arg(&good)
        .arg(&bad_path)
        .arg("--output")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "bad.csv` line 1: header does not match",
        ));

    assert_eq!(
        std::fs::read_to_string(out.join("_manifest.json")).unwrap(),
        before
    );
    assert_eq!(scalar(&out, "SELECT count(*) FROM campaigns"), 4);
    assert_no_staging(tmp.path(), ".");
}

#[test]
fn several_inputs_and_gzip_are_read_as_one_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = generate(tmp.path(), 2000, 9, 0.0);
    let gz = gzip(&raw, &tmp.path().join("copy.csv.gz"));
    let out = tmp.path().join("clean");
    let url = format!("file://{}", gz.display());
    preprocess_with(&[raw.as_os_str(), url.as_ref()], &out, &[]);
    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], 4000);
    // Every record of the copy has the same id as one in the original: a duplicate.
    assert_eq!(
        counts["duplicates_dropped"].as_u64().unwrap() + counts["rows_out"].as_u64().unwrap(),
        4000 - counts["rejected"].as_u64().unwrap()
    );
    assert_eq!(
        counts["rows_out"].as_u64().unwrap() * 2,
        4000 - counts["rejected"].as_u64().unwrap()
    );
    assert_eq!(manifest(&out)["inputs"].as_array().unwrap().len(), 2);
}

#[test]
fn an_interrupted_run_leaves_the_previous_output_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&fixture("dirty.csv"), &out);
    let before = std::fs::read_to_string(out.join("_manifest.json")).unwrap();

    // The input is a pipe this test holds open, so the run is surely mid-way
    // when it is interrupted.
    let fifo = tmp.path().join("input.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let child = crate::support::adlens_process()
        .args(["--quiet", "preprocess", "--input"])
        .arg(&fifo)
        .arg("--output")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let dump = std::fs::read(fixture("dirty.csv")).unwrap();
    std::io::Write::write_all(&mut pipe, &dump).unwrap();
    let staging = tmp.path().join(format!(".clean.tmp-{}", child.id()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !staging.join("campaigns").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = child.wait_with_output().unwrap();
    drop(pipe);

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("interrupted") && stderr.contains("left as it was"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("_manifest.json")).unwrap(),
        before
    );
    assert!(!staging.exists(), "staging directory left behind");
}

/// The cleaning pass writes cheap LZ4 staging copies of the campaigns that
/// the duplicate pass rewrites: none may reach the output. Every published
/// file is zstd and carries its `campaign_id` bloom filter; the ids have
/// min/max statistics (they prune), the free-text columns none.
#[test]
fn published_files_are_zstd_with_the_id_bloom_filter() {
    use parquet::basic::Compression;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let tmp = tempfile::tempdir().unwrap();
    let raw = generate(tmp.path(), 5000, 3, 0.02);
    let out = tmp.path().join("clean");
    preprocess(&raw, &out);
    for table in ["campaigns", "rejects"] {
        let files = adlens::layout::parquet_files(&out.join(table)).unwrap();
        assert!(!files.is_empty(), "{table} has files");
        for file in files {
            let reader = SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap();
            for group in reader.metadata().row_groups() {
                for column in group.columns() {
                    assert!(
                        matches!(column.compression(), Compression::ZSTD(_)),
                        "{}: {} is {:?}",
                        file.display(),
                        column.column_path(),
                        column.compression()
                    );
                }
                let id = group
                    .columns()
                    .iter()
                    .find(|c| c.column_path().string() == "campaign_id")
                    .unwrap();
                assert!(id.bloom_filter_offset().is_some(), "{}", file.display());
                for column in group.columns() {
                    let name = column.column_path().string();
                    let free_text = ["raw_url", "url", "title", "description", "raw_text"];
                    if free_text.contains(&name.as_str()) {
                        assert!(column.statistics().is_none(), "{}: {name}", file.display());
                    }
                }
                if table == "campaigns" {
                    let min = id.statistics().and_then(|s| s.min_bytes_opt());
                    assert!(min.is_some(), "{}: campaign_id min", file.display());
                }
            }
        }
    }
}
