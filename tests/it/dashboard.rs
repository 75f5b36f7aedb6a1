//! `adlens dashboard` over real outputs (preprocess, batch and a real stream
//! run): the JSON endpoints, their 400s, and the page rendered by Debian's
//! Chromium, headless, with the expected series in the DOM and a screenshot.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::broker::Broker;
use crate::stream::{Prepared, prepared, run_stream, topics};
use crate::support::{adlens_process, scalar};

pub struct Dashboard {
    child: Child,
    pub addr: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the dashboard on a free port and reads the address it prints.
pub fn start(p: &Prepared) -> Dashboard {
    let mut child = adlens_process()
        .args(["dashboard", "--port", "0", "--data"])
        .arg(&p.clean)
        .arg("--stream-data")
        .arg(p.dir.path().join("stream"))
        .arg("--models")
        .arg(&p.models)
        .stderr(Stdio::piped())
        .spawn()
        .expect("dashboard starts");
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("dashboard: http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line `{line}`"))
        .to_string();
    Dashboard { child, addr }
}

/// A plain HTTP/1.1 GET: `(status, body)`.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Debian's Chromium, headless, as this machine's browser tests run it.
fn chromium(profile: &Path) -> Option<Command> {
    let bin = Path::new("/usr/bin/chromium");
    if !bin.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing on CI (make browser)"
        );
        eprintln!("skipping the browser part: no /usr/bin/chromium (make browser installs it)");
        return None;
    }
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=8000",
        "--window-size=1200,1150",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stderr(Stdio::null());
    Some(cmd)
}

/// The markup of the `<svg id="ID">` element.
fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let end = dom[start..].find("</svg>").unwrap() + start;
    &dom[start..end]
}

#[test]
fn dashboard_answers_json_and_renders_its_charts_in_chromium() {
    let p = prepared(2000, 71);
    let broker = Broker::start();
    topics(&broker);
    let status = adlens_process()
        .args(["--quiet", "produce", "--brokers", &broker.addr, "--file"])
        .arg(&p.raw)
        .status()
        .unwrap();
    assert!(status.success());
    run_stream(&broker, &p, &[]);
    let scored = scalar(&p.dir.path().join("stream"), "SELECT count(*) FROM scored");
    let dash = start(&p);

    let live = get_json(&dash.addr, "/api/live?windows=10");
    let windows = live["windows"].as_array().unwrap();
    assert!(!windows.is_empty());
    let total: i64 = windows.iter().map(|w| w["records"].as_i64().unwrap()).sum();
    assert_eq!(Some(total), scored.as_i64());
    let latest = std::fs::read_to_string(p.models.join("LATEST")).unwrap();
    assert_eq!(live["model"]["version"], latest.trim());
    assert_eq!(live["model"]["clusters"].as_array().unwrap().len(), 8);
    assert_eq!(
        live["topic_events"],
        serde_json::json!([]),
        "no online topics"
    );

    let history = get_json(&dash.addr, "/api/history?from=2023-02&to=2023-04");
    let months: std::collections::BTreeSet<&str> = history["clusters_over_time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["month"].as_str().unwrap())
        .collect();
    assert_eq!(
        months.into_iter().collect::<Vec<_>>(),
        ["2023-02", "2023-03", "2023-04"]
    );
    assert_eq!(history["cluster_sizes"].as_array().unwrap().len(), 8);
    assert!(!history["reject_reasons"].as_array().unwrap().is_empty());

    for (path, needle) in [
        ("/api/history?from=2023-13", "`from` must be a month"),
        ("/api/history?from=2023-05&to=2023-01", "is after `to`"),
        ("/api/live?windows=0", "`windows` must be"),
        ("/api/live?windows=lots", "`windows` must be"),
    ] {
        let (status, body) = get(&dash.addr, path);
        assert_eq!(status, 400, "{path}");
        assert!(body.contains(needle), "{path}: {body}");
    }

    let profile = tempfile::tempdir().unwrap();
    let Some(mut browser) = chromium(profile.path()) else {
        return;
    };
    let url = format!("http://{}/", dash.addr);
    let out = browser.arg("--dump-dom").arg(&url).output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-rendered=\"history live\""),
        "charts did not render:\n{dom}"
    );
    let live_chart = svg(&dom, "live-chart");
    assert!(
        live_chart.matches("class=\"bar\"").count() >= 8,
        "{live_chart}"
    );
    let history_chart = svg(&dom, "history-chart");
    for c in 0..8 {
        assert!(
            history_chart.contains(&format!("data-series=\"cluster {c}\"")),
            "cluster {c} missing"
        );
    }
    assert_eq!(svg(&dom, "sizes-chart").matches("class=\"bar\"").count(), 8);

    let shot = p.dir.path().join("dashboard.png");
    let profile = tempfile::tempdir().unwrap();
    let status = chromium(profile.path())
        .unwrap()
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .status()
        .unwrap();
    assert!(status.success());
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "screenshot is {size} bytes");
}
