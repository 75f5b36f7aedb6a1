//! `adlens stream` and `adlens produce` end to end against a real broker
//! process: every record accounted for, the same clusters as `adlens score`,
//! offsets committed, and no loss across a kill, a frozen broker, a retrain
//! and a second process in the group.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;
use tempfile::TempDir;

use crate::broker::{self, Broker};
use crate::support::{adlens, adlens_process, fixture, generate, preprocess, query, scalar};

const RAW: &str = "campaigns.raw";
const SCORED: &str = "campaigns.scored";
const DEAD: &str = "campaigns.dead-letter";

/// A temp dir with a generated dump, its cleaned Parquet and a model.
pub struct Prepared {
    pub dir: TempDir,
    pub raw: PathBuf,
    pub clean: PathBuf,
    pub models: PathBuf,
}

pub fn prepared(rows: u64, seed: u64) -> Prepared {
    let dir = tempfile::tempdir().expect("temp dir");
    let raw = generate(dir.path(), rows, seed, 0.02);
    let clean = dir.path().join("clean");
    preprocess(&raw, &clean);
    let models = dir.path().join("models");
    train(&clean, &models, 8, 42);
    Prepared {
        dir,
        raw,
        clean,
        models,
    }
}

fn train(clean: &Path, models: &Path, k: u32, seed: u64) {
    adlens()
        .args(["--quiet", "batch", "--data"])
        .arg(clean)
        .arg("--models")
        .arg(models)
        .args(["--k", &k.to_string(), "--seed", &seed.to_string()])
        .assert()
        .success();
}

fn latest(models: &Path) -> String {
    std::fs::read_to_string(models.join("LATEST"))
        .expect("LATEST")
        .trim()
        .to_string()
}

pub fn topics(broker: &Broker) {
    broker.topic(RAW, 3);
    broker.topic(SCORED, 3);
    broker.topic(DEAD, 1);
}

/// `adlens stream` with test-friendly settings (short group timeouts, a
/// quick idle exit), writing its Parquet under `dir/stream`.
pub fn stream_cmd(broker: &Broker, p: &Prepared, idle_secs: u32, extra: &[&str]) -> Command {
    let mut cmd = adlens_process();
    cmd.args(["stream", "--brokers", &broker.addr, "--models"])
        .arg(&p.models)
        .arg("--data")
        .arg(p.dir.path().join("stream"))
        .args(["--idle-exit", &idle_secs.to_string(), "--status-secs", "0"])
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=1000",
        ])
        .args(extra);
    cmd
}

pub fn spawn(mut cmd: Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts")
}

/// Waits for a child with a deadline, so a hang fails instead of blocking CI.
pub fn finish(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "did not finish in {within:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

/// [`finish`], asserting success; returns stderr.
pub fn finish_ok(child: Child, within: Duration) -> String {
    let out = finish(child, within);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "failed:\n{stderr}");
    stderr
}

pub fn run_stream(broker: &Broker, p: &Prepared, extra: &[&str]) -> String {
    finish_ok(
        spawn(stream_cmd(broker, p, 3, extra)),
        Duration::from_secs(120),
    )
}

fn produce(broker: &Broker, file: &Path, extra: &[&str]) -> Command {
    let mut cmd = adlens_process();
    cmd.args(["--quiet", "produce", "--brokers", &broker.addr, "--file"])
        .arg(file)
        .args(extra);
    cmd
}

fn produce_all(broker: &Broker, file: &Path, extra: &[&str]) {
    let status = produce(broker, file, extra).status().expect("runs");
    assert!(status.success(), "produce failed");
}

/// The `id` field of every record of a CSV, as `produce` keys them.
fn input_keys(file: &Path) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .expect("csv");
    reader
        .records()
        .map(|r| {
            r.expect("record")
                .get(1)
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

/// Keys of the results and dead letters, which together must cover the input.
fn output_keys(broker: &Broker) -> Vec<String> {
    let mut keys: Vec<String> = broker::read_all(&broker.addr, SCORED)
        .into_iter()
        .chain(broker::read_all(&broker.addr, DEAD))
        .map(|r| r.key)
        .collect();
    keys.sort();
    keys
}

fn assert_nothing_lost(broker: &Broker, inputs: &[String]) {
    let seen: HashSet<String> = output_keys(broker).into_iter().collect();
    let missing: Vec<&String> = inputs.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} inputs lost: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

fn assert_committed_to_the_end(broker: &Broker, group: &str) {
    assert_eq!(
        broker::committed(&broker.addr, group, RAW),
        broker::end_offsets(&broker.addr, RAW),
        "committed offsets of `{group}` should reach the end of `{RAW}`"
    );
}

#[test]
fn every_record_is_scored_like_adlens_score_or_dead_lettered() {
    let p = prepared(3000, 11);
    let broker = Broker::start();
    topics(&broker);
    for c in 0..8 {
        broker.topic(&format!("cluster_{c}"), 1);
    }
    produce_all(&broker, &p.raw, &[]);
    // Small micro-batches over a backlog fill up, so the loop cleans the next
    // one while it finishes the last: this checks that path record by record,
    // down to the one still being cleaned when the stream goes idle.
    let stderr = run_stream(
        &broker,
        &p,
        &[
            "--topic-per-cluster",
            "cluster_",
            "--max-batch-records",
            "250",
        ],
    );
    assert!(
        stderr.contains("stream: done: 3000 consumed in"),
        "{stderr}"
    );

    // Every input is a result or a dead letter, exactly once.
    let mut inputs = input_keys(&p.raw);
    inputs.sort();
    let outputs = output_keys(&broker);
    assert_eq!(outputs.len(), inputs.len(), "one output per input");
    assert!(outputs == inputs, "outputs are keyed like the inputs");
    assert_committed_to_the_end(&broker, "adlens-stream");

    // Each result's cluster is the one `adlens score` gave the same record.
    let assigned: HashMap<i64, u64> =
        query(&p.clean, "SELECT campaign_id, cluster_id FROM assignments")
            .iter()
            .map(|r| {
                (
                    r["campaign_id"].as_i64().unwrap(),
                    r["cluster_id"].as_u64().unwrap(),
                )
            })
            .collect();
    let results = broker::read_json(&broker.addr, SCORED);
    let mut per_id: HashMap<i64, Vec<&Value>> = HashMap::new();
    for r in &results {
        per_id
            .entry(r["campaign_id"].as_i64().unwrap())
            .or_default()
            .push(r);
    }
    let version = latest(&p.models);
    let mut compared = 0;
    for (id, rs) in &per_id {
        // Duplicated ids: `preprocess` kept one copy, the stream scored each.
        if let ([r], Some(cluster)) = (rs.as_slice(), assigned.get(id)) {
            assert_eq!(r["cluster"].as_u64(), Some(*cluster), "campaign {id}: {r}");
            assert_eq!(r["model_version"], version.as_str());
            compared += 1;
        }
    }
    assert!(compared > 2800, "compared only {compared}");

    // Per-cluster topics hold a copy of each result, in the right topic.
    let mut copies = 0;
    for c in 0..8u64 {
        for r in broker::read_json(&broker.addr, &format!("cluster_{c}")) {
            assert_eq!(r["cluster"].as_u64(), Some(c));
            copies += 1;
        }
    }
    assert_eq!(copies, results.len());

    // The Parquet sink agrees with the topics.
    let data = p.dir.path().join("stream");
    assert_eq!(scalar(&data, "SELECT count(*) FROM scored"), results.len());
    assert_eq!(
        scalar(&data, "SELECT sum(records) FROM cluster_windows"),
        results.len()
    );
    let dead = broker::read_json(&broker.addr, DEAD);
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM dead_letters"),
        dead.len()
    );
    assert!(!dead.is_empty());
    for d in &dead {
        assert!(!d["payload"].as_str().unwrap().is_empty(), "{d}");
    }

    // The example queries over the stream's outputs run and return rows.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/examples/stream");
    for entry in std::fs::read_dir(examples).unwrap() {
        let path = entry.unwrap().path();
        let sql = std::fs::read_to_string(&path).unwrap();
        assert!(
            !query(&data, &sql).is_empty(),
            "{} returned no rows",
            path.display()
        );
    }
}

#[test]
fn csv_messages_are_judged_by_the_same_rules_as_preprocess() {
    let dir = tempfile::tempdir().unwrap();
    let raw = fixture("dirty.csv");
    let clean = dir.path().join("clean");
    preprocess(&raw, &clean);
    let p = Prepared {
        raw,
        clean,
        models: dir.path().join("models"),
        dir,
    };
    // A model trained on a bigger generated set.
    let gen_dir = tempfile::tempdir().unwrap();
    let generated = generate(gen_dir.path(), 2000, 3, 0.0);
    preprocess(&generated, &gen_dir.path().join("clean"));
    train(&gen_dir.path().join("clean"), &p.models, 4, 1);

    let broker = Broker::start();
    topics(&broker);
    produce_all(&broker, &p.raw, &["--format", "csv"]);
    run_stream(&broker, &p, &["--format", "csv"]);

    let mut reasons: Vec<String> = broker::read_json(&broker.addr, DEAD)
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    reasons.sort();
    let mut expected: Vec<String> = query(&p.clean, "SELECT reject_reason FROM rejects")
        .iter()
        .map(|r| r["reject_reason"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    assert_eq!(reasons, expected);
    let records = input_keys(&p.raw).len() as i64;
    assert_eq!(
        broker::count(&broker.addr, SCORED) + broker::count(&broker.addr, DEAD),
        records
    );
}

fn record(id: &str, title: &str) -> Vec<u8> {
    serde_json::json!({
        "creation_time": "2023-05-17 10:00:00",
        "id": id,
        "url": "https://www.nike.com/running?utm_source=fb&fbclid=x",
        "title": title,
        "keywords": "running, shoes",
        "description": "Fast shoes",
    })
    .to_string()
    .into_bytes()
}

#[test]
fn bad_messages_go_to_the_dead_letter_topic_with_their_reason() {
    let p = prepared(1500, 5);
    let broker = Broker::start();
    topics(&broker);
    let messages: Vec<(&str, Vec<u8>)> = vec![
        ("a", b"not json".to_vec()),
        ("b", br#"{"id":"5"}"#.to_vec()),
        ("c", record("6", &"long ".repeat(1000))),
        ("d", b"[1,2,3]".to_vec()),
        ("e", record("77", "Nike running shoes")),
        ("f", record("abc", "Bad id")),
        ("g", vec![0xff, 0xfe, b'{']),
        ("h", Vec::new()),
    ];
    broker::produce(&broker.addr, RAW, &messages);
    run_stream(
        &broker,
        &p,
        &[
            "--max-message-bytes",
            "4096",
            "--dead-letter-payload-bytes",
            "100",
        ],
    );

    let dead: BTreeMap<String, Value> = broker::read_all(&broker.addr, DEAD)
        .into_iter()
        .map(|r| (r.key, serde_json::from_slice(&r.payload).unwrap()))
        .collect();
    let reasons: Vec<(&str, &str)> = dead
        .iter()
        .map(|(k, v)| (k.as_str(), v["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("a", "bad_json"),
            ("b", "missing_fields"),
            ("c", "too_large"),
            ("d", "bad_json"),
            ("f", "bad_id"),
            ("g", "bad_json"),
            ("h", "bad_json"),
        ]
    );
    assert_eq!(dead["a"]["payload"], "not json");
    assert_eq!(dead["a"]["payload_truncated"], false);
    assert_eq!(dead["a"]["topic"], RAW);
    // A dead letter carries at most --dead-letter-payload-bytes of payload.
    let long = record("6", &"long ".repeat(1000));
    assert_eq!(dead["c"]["payload_truncated"], true);
    assert_eq!(dead["c"]["payload_bytes"], long.len());
    assert_eq!(dead["c"]["payload"].as_str().unwrap().len(), 100);
    assert!(
        dead["b"]["detail"].as_str().unwrap().contains("`url`"),
        "{}",
        dead["b"]
    );

    let results = broker::read_json(&broker.addr, SCORED);
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r["campaign_id"], 77);
    assert_eq!(r["created_at"], "2023-05-17T10:00:00");
    assert_eq!(r["domain"], "nike.com");
    assert_eq!(r["model_version"], latest(&p.models).as_str());
    assert!(r["cluster"].as_u64().unwrap() < 8);
    assert!(!r["cluster_label"].as_str().unwrap().is_empty());
    assert!(r["distance"].as_f64().unwrap() >= 0.0);
    assert!(r["processed_at"].as_str().unwrap().ends_with('Z'));
}

/// Sends SIGTERM (a graceful stop) to a child.
fn terminate(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, Signal::TERM).unwrap();
}

/// Waits until results plus dead letters reach `n`.
fn wait_for_outputs(broker: &Broker, n: i64, within: Duration) {
    let deadline = Instant::now() + within;
    while broker::count(&broker.addr, SCORED) + broker::count(&broker.addr, DEAD) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} outputs after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_killed_stream_resumes_from_its_last_commit_without_loss() {
    let p = prepared(3000, 21);
    let broker = Broker::start();
    topics(&broker);
    let small = [
        "--max-batch-records",
        "100",
        "--max-batch-ms",
        "100",
        "--checkpoint-ms",
        "300",
    ];
    let producer = spawn(produce(&broker, &p.raw, &["--rate", "1000"]));
    let first = spawn(stream_cmd(&broker, &p, 30, &small));
    wait_for_outputs(&broker, 1000, Duration::from_secs(60));
    let mut first = first;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    let committed_at_kill = broker::committed(&broker.addr, "adlens-stream", RAW);

    let second = spawn(stream_cmd(&broker, &p, 4, &small));
    finish_ok(producer, Duration::from_secs(60));
    finish_ok(second, Duration::from_secs(120));

    assert_nothing_lost(&broker, &input_keys(&p.raw));
    assert_committed_to_the_end(&broker, "adlens-stream");
    // Records scored twice all come after the offset committed at the kill.
    let data = p.dir.path().join("stream");
    let twice = query(
        &data,
        "SELECT kafka_partition, kafka_offset FROM scored \
         GROUP BY kafka_partition, kafka_offset HAVING count(*) > 1",
    );
    for row in &twice {
        let partition = row["kafka_partition"].as_i64().unwrap() as i32;
        let offset = row["kafka_offset"].as_i64().unwrap();
        assert!(
            offset >= committed_at_kill[&partition],
            "{row:?} before {committed_at_kill:?}"
        );
    }
    let distinct = scalar(
        &data,
        "SELECT count(*) FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM scored)",
    );
    let dead = scalar(
        &data,
        "SELECT count(*) FROM (SELECT DISTINCT kafka_partition, kafka_offset FROM dead_letters)",
    );
    assert_eq!(distinct.as_i64().unwrap() + dead.as_i64().unwrap(), 3000);
}

#[test]
fn a_frozen_broker_delays_the_stream_but_loses_nothing() {
    let p = prepared(2000, 31);
    let broker = Broker::start();
    topics(&broker);
    let stream = spawn(stream_cmd(&broker, &p, 12, &[]));
    let producer = spawn(produce(&broker, &p.raw, &["--rate", "500"]));
    std::thread::sleep(Duration::from_millis(1500));
    broker.signal(Signal::STOP);
    std::thread::sleep(Duration::from_secs(6));
    broker.signal(Signal::CONT);
    finish_ok(producer, Duration::from_secs(90));
    finish_ok(stream, Duration::from_secs(120));
    assert_nothing_lost(&broker, &input_keys(&p.raw));
    assert_committed_to_the_end(&broker, "adlens-stream");
}

/// Splits a CSV into `parts` files with the header each.
fn split(file: &Path, parts: usize) -> Vec<PathBuf> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .unwrap();
    let header = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let size = records.len().div_ceil(parts);
    records
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let path = file.with_extension(format!("part{i}.csv"));
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .from_path(&path)
                .unwrap();
            w.write_record(&header).unwrap();
            for r in chunk {
                w.write_record(r).unwrap();
            }
            w.flush().unwrap();
            path
        })
        .collect()
}

fn versions_of(broker: &Broker, keys: &[String]) -> HashSet<String> {
    let wanted: HashSet<&String> = keys.iter().collect();
    broker::read_all(&broker.addr, SCORED)
        .into_iter()
        .filter(|r| wanted.contains(&r.key))
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.payload).unwrap();
            v["model_version"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_retrained_model_is_picked_up_and_a_broken_one_refused() {
    let p = prepared(3000, 41);
    let parts = split(&p.raw, 3);
    let first_version = latest(&p.models);
    let broker = Broker::start();
    topics(&broker);
    // No idle exit: retraining under a loaded CI machine can take a while.
    // The stream is stopped with SIGTERM once every output is there.
    let stream = spawn(stream_cmd(&broker, &p, 600, &["--model-poll-ms", "200"]));

    produce_all(&broker, &parts[0], &[]);
    wait_for_outputs(&broker, 1000, Duration::from_secs(60));
    train(&p.clean, &p.models, 6, 7);
    let second_version = latest(&p.models);
    assert_ne!(first_version, second_version);
    std::thread::sleep(Duration::from_secs(2));
    produce_all(&broker, &parts[1], &[]);
    wait_for_outputs(&broker, 2000, Duration::from_secs(60));

    // A version whose files are broken is refused; the old one keeps serving.
    let broken = p.models.join("20991231T000000000Z-broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("model.json"), "{ not a model").unwrap();
    std::fs::write(p.models.join("LATEST"), "20991231T000000000Z-broken\n").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    produce_all(&broker, &parts[2], &[]);
    wait_for_outputs(&broker, 3000, Duration::from_secs(60));
    terminate(&stream);

    let stderr = finish_ok(stream, Duration::from_secs(120));
    assert!(
        stderr.contains("refusing model `20991231T000000000Z-broken`"),
        "{stderr}"
    );
    assert_nothing_lost(&broker, &input_keys(&p.raw));
    let keys = |i: usize| input_keys(&parts[i]);
    assert_eq!(
        versions_of(&broker, &keys(0)),
        HashSet::from([first_version])
    );
    assert_eq!(
        versions_of(&broker, &keys(1)),
        HashSet::from([second_version.clone()])
    );
    assert_eq!(
        versions_of(&broker, &keys(2)),
        HashSet::from([second_version])
    );
}

/// Records a stream process consumed, from its summary line.
fn consumed(stderr: String) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("stream: done: "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    line["stream: done: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_rebalance_commits_finished_work_before_partitions_move() {
    let p = prepared(1500, 61);
    let broker = Broker::start();
    topics(&broker);
    produce_all(&broker, &p.raw, &[]);
    // A checkpoint interval longer than the test: only the revoke commits.
    let a = spawn(stream_cmd(&broker, &p, 60, &["--checkpoint-ms", "600000"]));
    wait_for_outputs(&broker, 1500, Duration::from_secs(60));
    let before = broker::committed(&broker.addr, "adlens-stream", RAW);
    assert!(
        before.values().all(|o| *o == -1),
        "nothing is committed before the rebalance: {before:?}"
    );
    let b = spawn(stream_cmd(&broker, &p, 6, &[]));
    let b = consumed(finish_ok(b, Duration::from_secs(60)));
    terminate(&a);
    let a = consumed(finish_ok(a, Duration::from_secs(60)));
    assert_eq!((a, b), (1500, 0), "the joining process replays nothing");
    assert_eq!(
        broker::count(&broker.addr, SCORED) + broker::count(&broker.addr, DEAD),
        1500
    );
    assert_committed_to_the_end(&broker, "adlens-stream");
}

#[test]
fn two_processes_in_one_group_share_the_partitions() {
    let p = prepared(3000, 51);
    let broker = Broker::start();
    topics(&broker);
    let a = spawn(stream_cmd(&broker, &p, 10, &[]));
    let b = spawn(stream_cmd(&broker, &p, 10, &[]));
    // Let both join before records arrive, then feed them for a few seconds.
    std::thread::sleep(Duration::from_secs(5));
    produce_all(&broker, &p.raw, &["--rate", "600"]);
    let (a, b) = (
        consumed(finish_ok(a, Duration::from_secs(120))),
        consumed(finish_ok(b, Duration::from_secs(120))),
    );
    assert!(a > 0 && b > 0, "both processes take records: {a} and {b}");
    assert!(a + b >= 3000);
    assert_nothing_lost(&broker, &input_keys(&p.raw));
    assert_committed_to_the_end(&broker, "adlens-stream");
}

#[test]
fn stream_and_produce_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    adlens()
        .args(["stream", "--brokers", "127.0.0.1:1", "--models"])
        .arg(dir.path().join("nope"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no model yet"));
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b,c\n1,2,3\n").unwrap();
    adlens()
        .args(["produce", "--brokers", "127.0.0.1:1", "--file"])
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "bad.csv` line 1: header does not match",
        ));
}

#[test]
fn sigterm_finishes_the_batch_commits_and_exits_cleanly() {
    let p = prepared(1500, 61);
    let broker = Broker::start();
    topics(&broker);
    produce_all(&broker, &p.raw, &[]);
    let stream = spawn(stream_cmd(&broker, &p, 600, &["--checkpoint-ms", "600000"]));
    wait_for_outputs(&broker, 1500, Duration::from_secs(60));
    terminate(&stream);
    let stderr = finish_ok(stream, Duration::from_secs(30));
    assert!(stderr.contains("stream: done: 1500 consumed"), "{stderr}");
    // The long checkpoint interval never came: the shutdown committed.
    assert_committed_to_the_end(&broker, "adlens-stream");
    let data = p.dir.path().join("stream");
    assert_eq!(
        scalar(&data, "SELECT count(*) FROM scored")
            .as_i64()
            .unwrap()
            + scalar(&data, "SELECT count(*) FROM dead_letters")
                .as_i64()
                .unwrap(),
        1500
    );
}

/// The hostile fixture's records, one message each (as `produce --format csv`
/// sends them), plus garbage: the stream keeps running, every message ends
/// as a result or a dead letter, with the reasons `preprocess` gives.
#[test]
fn hostile_records_as_messages_lose_no_id() {
    let p = prepared(1500, 5);
    let broker = Broker::start();
    topics(&broker);
    produce_all(&broker, &fixture("hostile.csv"), &["--format", "csv"]);
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        ("g1", vec![0xff, 0x00, b'"', b'\n']),
        ("g2", b"\"\"\"".to_vec()),
        (
            "g3",
            "2023-05-01 00:00:00,9,https://x.jp/?商品=1,t,k,d"
                .as_bytes()
                .to_vec(),
        ),
        ("g4", Vec::new()),
    ];
    broker::produce(&broker.addr, RAW, &garbage);
    run_stream(&broker, &p, &["--format", "csv"]);

    let scored = broker::read_json(&broker.addr, SCORED);
    let dead = broker::read_json(&broker.addr, DEAD);
    // 15 records in the fixture, 4 garbage messages: none lost, none twice.
    assert_eq!(scored.len() + dead.len(), 15 + 4);
    let mut reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "bad_csv",
            "bad_encoding",
            "bad_id",
            "bad_timestamp",
            "empty_text",
            "ragged_row",
            // The stray quote of the fixture, and two garbage messages
            // whose quotes never close.
            "unbalanced_quote",
            "unbalanced_quote",
            "unbalanced_quote"
        ]
    );
    // The stream does not drop duplicates: both copies of 2002 are scored,
    // and the record with a non-ASCII parameter name no longer kills it.
    let mut ids: Vec<i64> = scored
        .iter()
        .map(|r| r["campaign_id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [9, 2001, 2002, 2002, 2003, 2004, 2006, 2007, 2011, 2012]
    );
}
