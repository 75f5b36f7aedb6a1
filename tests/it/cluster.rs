//! A real Ballista cluster of adlens processes on 127.0.0.1 (one scheduler,
//! two executors, each its own `adlens cluster ...` process): preprocess,
//! score and SQL through it must give exactly what a local run gives.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::support::{
    Cluster, adlens, adlens_process, assert_no_staging, free_port, generate, manifest, query_with,
};

/// Three generated dumps with dirt and cross-file duplicate ids.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    (0..3u64)
        .map(|n| {
            let sub = dir.join(format!("in-{n}"));
            std::fs::create_dir_all(&sub).expect("input dir");
            generate(&sub, 1_500 + 500 * n, 40 + n % 2, 0.05)
        })
        .collect()
}

fn preprocess(inputs: &[PathBuf], out: &Path, cluster: Option<&str>) {
    let mut cmd = adlens();
    cmd.args(["--quiet", "preprocess", "--partitions", "2", "--input"])
        .args(inputs)
        .arg("--output")
        .arg(out);
    if let Some(url) = cluster {
        cmd.args(["--cluster", url]);
    }
    cmd.timeout(Duration::from_secs(300)).assert().success();
}

/// Rows as `adlens sql --format json` prints them.
type Rows = Vec<Map<String, Value>>;

/// Every row of a query as JSON objects, on a cluster or locally.
fn rows(data: &Path, sql: &str, cluster: Option<&str>) -> Rows {
    let mut cmd = adlens();
    cmd.timeout(Duration::from_secs(120));
    if let Some(url) = cluster {
        cmd.env(adlens::env::EnvVars::ADLENS_CLUSTER, url);
    }
    query_with(cmd, data, sql)
}

/// The rows and rejects of an output, read back locally, in a fixed order.
fn contents(out: &Path) -> (Rows, Rows) {
    let kept = rows(
        out,
        "select * from campaigns order by campaign_id, source_input, source_line",
        None,
    );
    let rejected = rows(
        out,
        "select * from rejects order by source_input, source_line",
        None,
    );
    (kept, rejected)
}

#[test]
fn preprocess_and_sql_on_a_cluster_give_what_a_local_run_gives() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let local = dir.path().join("local");
    preprocess(&files, &local, None);

    let cluster = Cluster::start(dir.path(), 2);
    let remote = dir.path().join("remote");
    preprocess(&files, &remote, Some(&cluster.url));

    let counts = |out: &Path| manifest(out)["counts"].clone();
    assert_eq!(counts(&remote), counts(&local));
    assert_eq!(manifest(&remote)["counts"]["records_in"], 4_500 + 1_500);
    let (kept, rejected) = contents(&remote);
    let (local_kept, local_rejected) = contents(&local);
    assert!(!rejected.is_empty() && kept.len() > 2_000, "{}", kept.len());
    assert!(kept == local_kept, "kept rows differ from the local run");
    assert!(
        rejected == local_rejected,
        "rejects differ from the local run"
    );

    for example in ["rows_per_month", "reject_reasons", "top_domains"] {
        let sql = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("sql/examples/{example}.sql")),
        )
        .expect("example query");
        assert_eq!(
            rows(&local, &sql, Some(&cluster.url)),
            rows(&local, &sql, None),
            "sql/examples/{example}.sql"
        );
    }

    // Scoring on the cluster (the executors load the model by its path)
    // gives the assignments and cluster labels `batch` wrote locally.
    for algorithm in ["kmeans", "dmm"] {
        let models = dir.path().join(format!("models-{algorithm}"));
        adlens()
            .args([
                "--quiet",
                "batch",
                "--k",
                "6",
                "--algorithm",
                algorithm,
                "--data",
            ])
            .arg(&local)
            .arg("--models")
            .arg(&models)
            .timeout(Duration::from_secs(300))
            .assert()
            .success();
        adlens()
            .args(["--quiet", "score", "--cluster", &cluster.url, "--data"])
            .arg(&remote)
            .arg("--models")
            .arg(&models)
            .timeout(Duration::from_secs(300))
            .assert()
            .success();
        for sql in [
            "select * from assignments order by campaign_id",
            "select * from clusters order by cluster_id",
        ] {
            let (there, here) = (rows(&remote, sql, None), rows(&local, sql, None));
            assert!(there.len() >= 2 && there == here, "{algorithm}: {sql}");
        }
        assert_no_staging(&remote, ".");
    }
}

#[test]
fn a_job_that_loses_an_executor_finishes_the_same_or_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..4u64)
        .map(|n| {
            let sub = dir.path().join(format!("in-{n}"));
            std::fs::create_dir_all(&sub).expect("input dir");
            generate(&sub, 20_000, 50 + n, 0.02)
        })
        .collect();
    let local = dir.path().join("local");
    preprocess(&files, &local, None);

    let mut cluster = Cluster::start(dir.path(), 2);
    let remote = dir.path().join("remote");
    let mut run = adlens_process()
        .args([
            "--quiet",
            "preprocess",
            "--cluster",
            &cluster.url,
            "--input",
        ])
        .args(&files)
        .arg("--output")
        .arg(&remote)
        .stderr(Stdio::piped())
        .spawn()
        .expect("preprocess starts");
    // Let the job reach the executors, then take one away.
    std::thread::sleep(Duration::from_millis(1_500));
    cluster.kill_executor(1);
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = run.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "preprocess hung after losing an executor"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    if status.success() {
        eprintln!("the job finished on the remaining executor");
        assert_eq!(manifest(&remote)["counts"], manifest(&local)["counts"]);
        assert!(
            contents(&remote) == contents(&local),
            "rows differ from the local run"
        );
    } else {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut run.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        eprintln!("the job failed cleanly: {stderr}");
        assert!(matches!(status.code(), Some(1 | 2)), "{stderr}");
        assert!(
            !remote.exists(),
            "a failed job published `{}`",
            remote.display()
        );
        assert_no_staging(dir.path(), ".remote");
    }
}

#[test]
fn an_unreachable_cluster_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), 10, 1, 0.0);
    let url = format!("df://127.0.0.1:{}", free_port());
    let output = adlens()
        .args(["preprocess", "--cluster", &url, "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("`{url}`: cannot reach the cluster's scheduler")),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn bad_cluster_addresses_are_refused_at_the_command_line() {
    let refuse = |args: &[&str]| {
        let output = adlens().args(args).output().expect("runs");
        assert_eq!(output.status.code(), Some(2), "clap's usage-error code");
        String::from_utf8(output.stderr).expect("utf-8")
    };
    insta::assert_snapshot!(
        "not_a_cluster_url",
        refuse(&["sql", "--cluster", "http://sched:50050", "-c", "select 1"])
    );
    insta::assert_snapshot!(
        "scheduler_without_port",
        refuse(&["cluster", "executor", "--scheduler", "sched-host"])
    );
    insta::assert_snapshot!(
        "bad_data_location",
        refuse(&["sql", "--data", "s3:///campaigns", "-c", "select 1"])
    );
}

#[test]
fn sigterm_stops_the_nodes_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), 1);
    let stop = |child: &mut Child, name: &str| {
        let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let log = std::fs::read_to_string(dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                assert!(status.success(), "{name} exited with {status}: {log}");
                return;
            }
            assert!(Instant::now() < deadline, "{name} ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut executor = cluster.executors[0].take().expect("executor");
    stop(&mut executor, "executor-0");
    stop(&mut cluster.scheduler, "scheduler");
}
