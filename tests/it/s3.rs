//! Object storage for real: a moto S3-API server process per test on
//! 127.0.0.1 (`make s3` installs it), written and read by `adlens` through
//! `s3://` URLs, and checked with a different S3 client (boto3, through
//! `scripts/s3.sh`), locally and on a cluster whose nodes read the same
//! bucket.

use std::path::Path;

use crate::support::{Cluster, S3, adlens, generate, gzip, manifest, query_with};

// `source_file` names the input as given: a URL here, a path locally.
const ALL_ROWS: &str =
    "select * exclude (source_file) from campaigns order by campaign_id, source_input, source_line";
const ALL_REJECTS: &str =
    "select * exclude (source_file) from rejects order by source_input, source_line";

#[test]
fn preprocess_from_and_to_a_bucket_matches_a_local_run_and_publishes_runs_whole() {
    let dir = tempfile::tempdir().unwrap();
    let raw = generate(dir.path(), 3_000, 7, 0.05);
    let local = dir.path().join("local");
    // From a gzip copy: like a bucket's object, it is not scanned for
    // repeated ids first (every kept row goes through the duplicate pass),
    // so the two runs also lay out the same files.
    crate::support::preprocess(&gzip(&raw, &dir.path().join("raw.csv.gz")), &local);

    let s3 = S3::start(false);
    s3.script("bucket", &["dumps", "lake"]);
    s3.script("put", &["dumps", "2023/raw.csv", raw.to_str().unwrap()]);
    let publish = || {
        s3.adlens()
            .args([
                "--quiet",
                "preprocess",
                "--input",
                "s3://dumps/2023/raw.csv",
            ])
            .args(["--output", "s3://lake/campaigns"])
            .assert()
            .success();
    };
    publish();

    // What the bucket holds: one run with its manifest, and `_LATEST`.
    let keys = s3.keys("lake", "campaigns/");
    assert!(keys.contains(&"campaigns/_LATEST".to_string()), "{keys:?}");
    let manifest_key = keys
        .iter()
        .find(|k| k.ends_with("/_manifest.json"))
        .expect("a published manifest");
    assert!(
        manifest_key.starts_with("campaigns/runs/"),
        "{manifest_key}"
    );
    let local_files = count_files(&local);
    assert_eq!(keys.len(), local_files + 1, "{keys:?}");

    let url = "s3://lake/campaigns";
    let local = local.to_str().unwrap();
    let kept = query_with(s3.adlens(), url, ALL_ROWS);
    assert!(kept.len() > 2_000, "{}", kept.len());
    assert!(
        kept == query_with(adlens(), local, ALL_ROWS),
        "rows differ from the local run"
    );
    let rejected = query_with(s3.adlens(), url, ALL_REJECTS);
    assert!(!rejected.is_empty());
    assert!(
        rejected == query_with(adlens(), local, ALL_REJECTS),
        "rejects differ"
    );
    let counts = manifest(Path::new(local))["counts"].clone();
    let n = query_with(s3.adlens(), url, "select count(*) as n from campaigns");
    assert_eq!(n[0]["n"], counts["rows_out"]);

    // A second run replaces the first; the one it replaced is kept for
    // queries already reading it, older ones go.
    publish();
    publish();
    let runs: std::collections::BTreeSet<String> = s3
        .keys("lake", "campaigns/runs/")
        .iter()
        .filter_map(|k| k.split('/').nth(2).map(String::from))
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        query_with(s3.adlens(), url, ALL_ROWS).len(),
        counts["rows_out"].as_u64().unwrap() as usize
    );
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn a_missing_bucket_or_refused_credentials_are_one_line_errors_naming_the_url() {
    let s3 = S3::start(false);
    let fails = |mut cmd: assert_cmd::Command, url: &str| {
        let output = cmd.output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(url), "{stderr}");
    };
    let mut sql = s3.adlens();
    sql.args([
        "sql",
        "--data",
        "s3://no-such-bucket/campaigns",
        "-c",
        "select 1",
    ]);
    fails(sql, "s3://no-such-bucket/campaigns");
    let mut pre = s3.adlens();
    pre.args(["preprocess", "--input", "s3://no-such-bucket/raw.csv"])
        .args(["--output", "s3://no-such-bucket/out"]);
    fails(pre, "s3://no-such-bucket/raw.csv");

    let strict = S3::start(true);
    let mut sql = strict.adlens();
    sql.args(["sql", "--data", "s3://lake/campaigns", "-c", "select 1"]);
    fails(sql, "s3://lake/campaigns");
}

#[test]
fn a_cluster_cleans_a_bucket_into_a_bucket_and_queries_it_like_a_local_run() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3::start(false);
    s3.script("bucket", &["dumps", "lake"]);
    let mut locals = Vec::new();
    for n in 0..2u64 {
        let sub = dir.path().join(format!("in-{n}"));
        std::fs::create_dir_all(&sub).unwrap();
        let raw = generate(&sub, 1_500, 60 + n, 0.05);
        s3.script(
            "put",
            &[
                "dumps",
                &format!("2023/part-{n}.csv"),
                raw.to_str().unwrap(),
            ],
        );
        locals.push(raw);
    }
    let local = dir.path().join("local");
    let inputs: Vec<&std::ffi::OsStr> = locals.iter().map(|p| p.as_os_str()).collect();
    crate::support::preprocess_with(&inputs, &local, &[]);

    // The executors read the dumps from the bucket themselves.
    let cluster = Cluster::start_with_env(dir.path(), 2, &s3.env());
    s3.adlens()
        .args([
            "--quiet",
            "preprocess",
            "--cluster",
            &cluster.url,
            "--input",
        ])
        .args(["s3://dumps/2023/part-0.csv", "s3://dumps/2023/part-1.csv"])
        .args(["--output", "s3://lake/campaigns"])
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .success();

    let url = "s3://lake/campaigns";
    let local = local.to_str().unwrap();
    let on_cluster = |sql: &str| {
        let mut cmd = s3.adlens();
        cmd.env(adlens::env::EnvVars::ADLENS_CLUSTER, &cluster.url);
        query_with(cmd, url, sql)
    };
    let kept = on_cluster(ALL_ROWS);
    assert!(kept.len() > 1_000, "{}", kept.len());
    assert!(
        kept == query_with(adlens(), local, ALL_ROWS),
        "rows differ from the local run"
    );
    assert!(
        on_cluster(ALL_REJECTS) == query_with(adlens(), local, ALL_REJECTS),
        "rejects differ from the local run"
    );
}
