//! Object storage for real: a moto S3-API server process per test on
//! 127.0.0.1 (`make s3` installs it), written and read by `adlens` through
//! `s3://` URLs, and checked with a different S3 client (boto3, through
//! `scripts/s3.sh`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::{adlens, free_port, generate, manifest, wait_listening};

/// A moto server, killed when dropped.
struct S3 {
    child: Child,
    port: u16,
}

impl S3 {
    /// Starts a server; `checks_keys` makes it refuse unknown access keys
    /// (moto accepts any by default).
    fn start(checks_keys: bool) -> Self {
        let bin = cache().join("s3-venv/bin/moto_server");
        assert!(
            bin.exists(),
            "no S3 server at `{}`: run `make s3`",
            bin.display()
        );
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if checks_keys {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "0");
        }
        let child = cmd.spawn().expect("moto_server starts");
        wait_listening(&format!("127.0.0.1:{port}"), "S3 server");
        Self { child, port }
    }

    /// `scripts/s3.sh ACTION PORT ARGS...` (boto3), returning its stdout.
    fn script(&self, action: &str, args: &[&str]) -> String {
        let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3.sh"))
            .arg(action)
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("scripts/s3.sh runs");
        assert!(
            output.status.success(),
            "s3.sh {action}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// `adlens` with this server's endpoint and throwaway credentials.
    fn adlens(&self) -> assert_cmd::Command {
        let mut cmd = adlens();
        cmd.env(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", self.port),
        )
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "adlens-test")
        .env("AWS_SECRET_ACCESS_KEY", "adlens-test")
        .env("AWS_REGION", "us-east-1");
        cmd
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.script("ls", &[bucket, prefix])
            .lines()
            .map(String::from)
            .collect()
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cache() -> PathBuf {
    std::env::var_os("ADLENS_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/adlens"),
        PathBuf::from,
    )
}

/// One query's JSON rows through `adlens sql` at `data` (a path or URL).
fn rows(cmd: &mut assert_cmd::Command, data: &str, sql: &str) -> Vec<serde_json::Value> {
    let output = cmd
        .args(["sql", "--format", "json", "--data", data])
        .arg(format!("--command={sql}"))
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "`{sql}` on `{data}`: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

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
    crate::support::preprocess(&raw, &local);

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
    let kept = rows(&mut s3.adlens(), url, ALL_ROWS);
    assert!(kept.len() > 2_000, "{}", kept.len());
    assert!(
        kept == rows(&mut adlens(), local, ALL_ROWS),
        "rows differ from the local run"
    );
    let rejected = rows(&mut s3.adlens(), url, ALL_REJECTS);
    assert!(!rejected.is_empty());
    assert!(
        rejected == rows(&mut adlens(), local, ALL_REJECTS),
        "rejects differ"
    );
    let counts = manifest(Path::new(local))["counts"].clone();
    let n = rows(&mut s3.adlens(), url, "select count(*) as n from campaigns");
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
        rows(&mut s3.adlens(), url, ALL_ROWS).len(),
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
