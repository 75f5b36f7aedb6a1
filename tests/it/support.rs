//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

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

/// Asserts that nothing in `dir` starts with `prefix`: no staging directory
/// of a failed or finished run was left behind.
pub fn assert_no_staging(dir: &Path, prefix: &str) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
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

/// Writes a gzip copy of `raw` to `gz`; returns `gz`.
pub fn gzip(raw: &Path, gz: &Path) -> PathBuf {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(gz).expect("create the copy"),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut encoder, &std::fs::read(raw).expect("read")).expect("write");
    encoder.finish().expect("finish the copy");
    gz.to_path_buf()
}

/// Runs one query through `adlens sql --format json` and returns its rows.
pub fn query(data: &Path, sql: &str) -> Vec<Map<String, Value>> {
    query_with(adlens(), data, sql)
}

/// [`query`] through a prepared `adlens` command (its environment, timeout)
/// over `data`, a directory or an `s3://` URL.
pub fn query_with(
    mut cmd: Command,
    data: impl AsRef<std::ffi::OsStr>,
    sql: &str,
) -> Vec<Map<String, Value>> {
    let output = cmd
        .args(["sql", "--format", "json", "--data"])
        .arg(data.as_ref())
        // `=` so a query starting with a `--` comment is not taken for a flag.
        .arg(format!("--command={sql}"))
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "query `{sql}` on `{}` failed: {}",
        data.as_ref().to_string_lossy(),
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

/// A scheduler and its executors, killed when dropped. Their logs are in
/// `dir` (`scheduler.log`, `executor-N.log`).
pub struct Cluster {
    pub scheduler: Child,
    pub executors: Vec<Option<Child>>,
    pub url: String,
}

impl Cluster {
    pub fn start(dir: &Path, executors: usize) -> Self {
        Self::start_with_env(dir, executors, &[])
    }

    /// [`Cluster::start`], the nodes given `env` too (e.g. an S3 endpoint).
    pub fn start_with_env(dir: &Path, executors: usize, env: &[(String, String)]) -> Self {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        // Quick to notice a lost executor, so the test that kills one is quick.
        let scheduler = node(
            dir,
            env,
            "scheduler",
            &[
                "cluster",
                "scheduler",
                "--bind",
                &addr,
                "--executor-timeout",
                "6",
            ],
        );
        wait_listening(&addr, "scheduler");
        let executors = (0..executors)
            .map(|n| {
                let (flight, grpc) = (free_port(), free_port());
                let work = dir.join(format!("work-{n}"));
                std::fs::create_dir_all(&work).expect("executor work dir");
                let bind = format!("127.0.0.1:{flight}");
                let grpc = grpc.to_string();
                let work = work.to_str().expect("utf-8 path");
                let args = [
                    "cluster",
                    "executor",
                    "--scheduler",
                    &addr,
                    "--bind",
                    &bind,
                    "--grpc-port",
                    &grpc,
                    "--concurrent-tasks",
                    "2",
                    "--work-dir",
                    work,
                    "--heartbeat-interval",
                    "1",
                ];
                let child = node(dir, env, &format!("executor-{n}"), &args);
                wait_listening(&bind, "executor");
                Some(child)
            })
            .collect();
        Self {
            scheduler,
            executors,
            url: format!("df://{addr}"),
        }
    }

    /// Kills executor `n` outright (no goodbye to the scheduler).
    pub fn kill_executor(&mut self, n: usize) {
        if let Some(mut child) = self.executors[n].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 0..self.executors.len() {
            self.kill_executor(n);
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }
}

/// One `adlens` node process logging to `dir/NAME.log`.
fn node(dir: &Path, env: &[(String, String)], name: &str, args: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    adlens_process()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("-v")
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{name} starts: {e}"))
}

/// A moto server, killed when dropped.
pub struct S3 {
    child: Child,
    port: u16,
}

impl S3 {
    /// Starts a server; `checks_keys` makes it refuse unknown access keys
    /// (moto accepts any by default).
    pub fn start(checks_keys: bool) -> Self {
        let bin = cache().join("s3-venv/bin/moto_server");
        assert!(
            bin.exists(),
            "no S3 server at `{}`: run `make s3`",
            bin.display()
        );
        let port = free_port();
        let mut cmd = std::process::Command::new(bin);
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
    pub fn script(&self, action: &str, args: &[&str]) -> String {
        let output =
            std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3.sh"))
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

    /// This server's endpoint and throwaway credentials, as `AWS_*` variables.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "adlens-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "adlens-test".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec()
    }

    /// `adlens` with [`S3::env`].
    pub fn adlens(&self) -> Command {
        let mut cmd = adlens();
        cmd.envs(self.env());
        cmd
    }

    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
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

/// Where `make broker` and `make s3` install (`ADLENS_CACHE` or `~/.cache/adlens`).
pub fn cache() -> PathBuf {
    std::env::var_os(adlens::env::EnvVars::ADLENS_CACHE).map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/adlens"),
        PathBuf::from,
    )
}
