//! A real Kafka-compatible broker (tansu, memory storage) per test, on a
//! free port of 127.0.0.1, and a plain rdkafka client to look at topics the
//! way any consumer of adlens's output would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// The tansu binary `make broker` installs (or `ADLENS_BROKER_BIN`).
fn broker_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os(adlens::env::EnvVars::ADLENS_BROKER_BIN) {
        return bin.into();
    }
    let bin = crate::support::cache().join("tansu-0.6.0/tansu");
    assert!(
        bin.exists(),
        "no broker at `{}`: run `make broker` (or set ADLENS_BROKER_BIN)",
        bin.display()
    );
    bin
}

/// A broker process, killed when dropped.
pub struct Broker {
    child: Child,
    bin: PathBuf,
    pub addr: String,
}

impl Broker {
    pub fn start() -> Self {
        let port = crate::support::free_port();
        let bin = broker_bin();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("broker starts");
        let addr = format!("127.0.0.1:{port}");
        crate::support::wait_listening(&addr, "broker");
        Self { child, bin, addr }
    }

    /// Creates a topic.
    pub fn topic(&self, name: &str, partitions: u32) {
        let status = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                "--broker",
                &format!("tcp://{}", self.addr),
            ])
            .args(["--partitions", &partitions.to_string(), name])
            .stdout(Stdio::null())
            .status()
            .expect("tansu topic create runs");
        assert!(status.success(), "creating topic `{name}`");
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the broker process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("signal the broker");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reader(addr: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: Vec<u8>,
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> Vec<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect()
}

/// Every record of a topic, read from the beginning until none has come for
/// a second. (tansu 0.6's ListOffsets reports wrong high watermarks, so the
/// end of a topic is found by reading it.)
pub fn read_all(addr: &str, topic: &str) -> Vec<Record> {
    let consumer = reader(addr, "adlens-test-reader");
    let mut tpl = TopicPartitionList::new();
    for p in partitions(&consumer, topic) {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_millis(1000) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let m = message.expect("a record");
            out.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                payload: m.payload().unwrap_or_default().to_vec(),
            });
            last = Instant::now();
        }
    }
    out
}

/// Each partition's end (last offset + 1; 0 when empty).
pub fn end_offsets(addr: &str, topic: &str) -> HashMap<i32, i64> {
    let consumer = reader(addr, "adlens-test-reader");
    let mut ends: HashMap<i32, i64> = partitions(&consumer, topic)
        .into_iter()
        .map(|p| (p, 0))
        .collect();
    for r in read_all(addr, topic) {
        let end = ends.entry(r.partition).or_default();
        *end = (*end).max(r.offset + 1);
    }
    ends
}

/// Records in a topic.
pub fn count(addr: &str, topic: &str) -> i64 {
    read_all(addr, topic).len() as i64
}

/// The JSON payloads of a topic.
pub fn read_json(addr: &str, topic: &str) -> Vec<serde_json::Value> {
    read_all(addr, topic)
        .into_iter()
        .map(|r| serde_json::from_slice(&r.payload).expect("JSON payload"))
        .collect()
}

/// The offsets `group` committed on `topic`, per partition (-1: none).
pub fn committed(addr: &str, group: &str, topic: &str) -> HashMap<i32, i64> {
    let consumer = reader(addr, group);
    let mut tpl = TopicPartitionList::new();
    for p in partitions(&consumer, topic) {
        tpl.add_partition(topic, p);
    }
    consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets")
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect()
}

/// Produces raw payloads (keyed) and waits for them to be acknowledged.
pub fn produce(addr: &str, topic: &str, records: &[(&str, Vec<u8>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("message.max.bytes", "10000000")
        .create()
        .expect("producer");
    for (key, payload) in records {
        producer
            .send(BaseRecord::to(topic).key(*key).payload(payload))
            .expect("queued");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("acknowledged");
}
