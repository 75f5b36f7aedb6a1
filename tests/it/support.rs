//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Map, Value};

/// The `adlens` binary with a clean environment.
pub fn adlens() -> Command {
    let mut cmd = Command::cargo_bin("adlens").expect("adlens binary is built");
    for var in adlens::env::EnvVars::ALL {
        cmd.env_remove(var);
    }
    cmd
}

/// The same, as a `std` command, for runs a test spawns and signals.
pub fn adlens_process() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("adlens"));
    for var in adlens::env::EnvVars::ALL {
        cmd.env_remove(var);
    }
    cmd
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: &str, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen on {addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A file of `../shared/data`. Missing is a failure on CI and a skip (with
/// a note) elsewhere, since a lone clone does not have them.
fn shared_data(relative: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "`{}` is missing on CI",
        path.display()
    );
    eprintln!("skipping: `{}` not found", path.display());
    None
}

/// The 100 real rows in `../shared/data`.
pub fn real_sample() -> Option<PathBuf> {
    shared_data("sample_campaign_data_2023.csv")
}

/// A labelled short-text set of `../shared/data/benchmarks`: `NAME.csv` and
/// `NAME.labels.csv`.
pub fn benchmark(name: &str) -> Option<(PathBuf, PathBuf)> {
    let texts = shared_data(&format!("benchmarks/{name}.csv"))?;
    let labels = shared_data(&format!("benchmarks/{name}.labels.csv"))?;
    Some((texts, labels))
}

/// Generates `rows` records with `seed` into `dir/raw.csv`.
pub fn generate(dir: &Path, rows: u64, seed: u64, dirty_rate: f64) -> PathBuf {
    let out = dir.join("raw.csv");
    adlens()
        .args([
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .args(["--dirty-rate", &dirty_rate.to_string(), "--out"])
        .arg(&out)
        .assert()
        .success();
    out
}

/// Runs `preprocess` and asserts it succeeded.
pub fn preprocess(input: &Path, out: &Path) {
    preprocess_with(&[input.as_os_str()], out, &[]);
}

/// Runs `preprocess` over several inputs (paths or URLs) with extra flags,
/// and asserts it succeeded.
pub fn preprocess_with(inputs: &[&std::ffi::OsStr], out: &Path, flags: &[&str]) {
    adlens()
        .args(["--quiet", "preprocess"])
        .args(flags)
        .arg("--input")
        .args(inputs)
        .arg("--output")
        .arg(out)
        .assert()
        .success();
}

pub fn manifest(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("_manifest.json")).expect("manifest exists");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// Runs one query through `adlens sql --format json` and returns its rows.
pub fn query(data: &Path, sql: &str) -> Vec<Map<String, Value>> {
    let output = adlens()
        .args(["sql", "--format", "json", "--data"])
        .arg(data)
        // `=` so a query starting with a `--` comment is not taken for a flag.
        .arg(format!("--command={sql}"))
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "query `{sql}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON object per line"))
        .collect()
}

/// The single value of a one-row, one-column query.
pub fn scalar(data: &Path, sql: &str) -> Value {
    let rows = query(data, sql);
    assert_eq!(rows.len(), 1, "`{sql}` should give one row");
    rows[0].values().next().cloned().expect("one column")
}

/// Counts from the manifest, asserting the no-record-vanishes invariant.
pub fn balanced_counts(dir: &Path) -> Value {
    let counts = manifest(dir)["counts"].clone();
    let n = |k: &str| counts[k].as_u64().unwrap_or_else(|| panic!("count `{k}`"));
    assert_eq!(
        n("records_in"),
        n("rows_out") + n("rejected") + n("duplicates_dropped"),
        "{counts}"
    );
    let by_reason: u64 = counts["rejected_by_reason"]
        .as_object()
        .expect("map")
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_reason, n("rejected"));
    counts
}
