//! `adlens stream --online` against a real broker: a new kind of campaign
//! becomes a topic with a new id, dies once its campaigns are forgotten,
//! and a restarted stream resumes the same topics from its checkpoint.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::broker::{self, Broker};
use crate::stream::{Prepared, finish_ok, prepared, spawn, stream_cmd};
use crate::support::query;

const INPUT: &str = "online.raw";
const EVENTS: &str = "online.events";

/// A campaign as the original producer sent it.
fn campaign(id: u64, title: &str, host: &str) -> (String, Vec<u8>) {
    let payload = serde_json::json!({
        "creation_time": "2023-05-17 10:00:00",
        "id": id.to_string(),
        "url": format!("https://{host}/offer"),
        "title": title,
        "keywords": "",
        "description": "",
    });
    (id.to_string(), payload.to_string().into_bytes())
}

/// 100 ordinary campaigns, 60 of a kind no model has seen, 200 ordinary.
fn messages() -> Vec<(String, Vec<u8>)> {
    let ordinary = [
        "cheap flights summer holiday hotel",
        "home loan low rate mortgage bank",
        "running shoes trail sneakers sale",
        "new phone camera video deal",
    ];
    let mut out = Vec::new();
    let mut id = 9_000_000;
    let mut add = |title: String, host: &str| {
        id += 1;
        out.push(campaign(id, &title, host));
    };
    for i in 0..100 {
        add(format!("{} {i}", ordinary[i % 4]), "www.example.com");
    }
    for i in 0..60 {
        add(
            format!("zorblax quantum hoverboard launch {i}"),
            "zorblax.io",
        );
    }
    for i in 0..200 {
        add(format!("{} {i}", ordinary[i % 4]), "www.example.com");
    }
    out
}

fn run(broker: &Broker, p: &Prepared, max_records: u64) -> String {
    let extra = [
        "--online",
        "--input-topic",
        INPUT,
        "--group",
        "online-test",
        "--max-batch-records",
        "50",
        "--max-batch-ms",
        "2000",
        "--forget-after",
        "2",
        "--min-topic-size",
        "5",
        "--topic-events-topic",
        EVENTS,
        "--max-records",
        &max_records.to_string(),
    ];
    finish_ok(
        spawn(stream_cmd(broker, p, 3, &extra)),
        Duration::from_secs(120),
    )
}

#[test]
fn a_new_kind_of_campaign_is_born_dies_and_survives_a_restart() {
    let p = prepared(1500, 8);
    let broker = Broker::start();
    crate::stream::topics(&broker);
    // One partition: the micro-batches follow the order produced.
    broker.topic(INPUT, 1);
    broker.topic(EVENTS, 1);
    let messages = messages();
    let records: Vec<(&str, Vec<u8>)> = messages
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    broker::produce(&broker.addr, INPUT, &records);

    // The first run stops after the new campaigns: the topic is born.
    let first = run(&broker, &p, 200);
    assert!(first.contains("0 micro-batches"), "{first}");
    let data = p.dir.path().join("stream");
    let state = data.join("online").join("topics.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).expect("state")).unwrap();
    assert_eq!(
        saved["offsets"]["0"], 200,
        "the state covers what was committed"
    );
    assert_eq!(
        broker::committed(&broker.addr, "online-test", INPUT)[&0],
        200
    );

    let born = query(
        &data,
        "SELECT cluster_id, label, size, batch FROM topic_events \
         WHERE event = 'born' AND label LIKE '%zorblax%'",
    );
    assert_eq!(born.len(), 1, "{born:?}");
    let topic = born[0]["cluster_id"].as_u64().unwrap();
    let k = 8; // the seed model's clusters keep ids 0..8
    assert!(topic >= k, "a new topic gets a new id: {topic}");
    let placed = query(
        &data,
        &format!(
            "SELECT count(*) AS n FROM scored WHERE cluster_id = {topic} \
             AND title LIKE 'zorblax%'"
        ),
    );
    assert!(placed[0]["n"].as_i64().unwrap() >= 55, "{placed:?}");
    let outsiders = query(
        &data,
        &format!(
            "SELECT count(*) AS n FROM scored WHERE cluster_id = {topic} \
             AND title NOT LIKE 'zorblax%'"
        ),
    );
    assert_eq!(outsiders[0]["n"], 0);

    // The second run resumes the same topics: the new one dies there, once
    // two newer micro-batches have none of its campaigns.
    let second = run(&broker, &p, 160);
    assert!(
        second.contains("online topics") && !second.contains("after 0 micro-batches"),
        "{second}"
    );
    let died = query(
        &data,
        &format!(
            "SELECT size, batch, label FROM topic_events \
             WHERE event = 'died' AND cluster_id = {topic}"
        ),
    );
    assert_eq!(died.len(), 1, "{died:?}");
    assert!(died[0]["size"].as_i64().unwrap() >= 55);
    assert!(died[0]["batch"].as_i64() > born[0]["batch"].as_i64());
    assert!(died[0]["label"].as_str().unwrap().contains("zorblax"));
    assert_eq!(
        broker::committed(&broker.addr, "online-test", INPUT)[&0],
        360
    );

    // Every record scored once across both runs, under online versions.
    let scored = query(
        &data,
        "SELECT count(*) AS n, count(DISTINCT campaign_id) AS ids, min(model_version) AS v FROM scored",
    );
    assert_eq!(scored[0]["n"], 360);
    assert_eq!(scored[0]["ids"], 360);
    assert!(scored[0]["v"].as_str().unwrap().starts_with("online:"));
    // Ids are never reused: one birth per id.
    let births = query(
        &data,
        "SELECT cluster_id FROM topic_events WHERE event = 'born'",
    );
    let ids: HashSet<u64> = births
        .iter()
        .map(|b| b["cluster_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), births.len());
    // The events topic carries the same events as the table.
    let sent = broker::read_json(&broker.addr, EVENTS);
    let table = query(&data, "SELECT count(*) AS n FROM topic_events");
    assert_eq!(sent.len() as i64, table[0]["n"].as_i64().unwrap());
    // The example query lists every event.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/examples/online/topic_events.sql"),
    )
    .unwrap();
    assert_eq!(query(&data, &example).len(), sent.len());
    assert!(
        sent.iter()
            .any(|e| e["event"] == "died" && e["topic"] == topic)
    );
}
