//! `adlens dashboard`: a small HTTP server with one self-contained page (no
//! CDN, no internet) and JSON endpoints answered by DataFusion SQL over the
//! Parquet outputs, read afresh on every request so new stream files show up:
//!
//! - `GET /api/live?windows=N` (1..=1440, default 30): the stream's latest
//!   windows, messages per cluster, records/s, outlier rate, model labels;
//! - `GET /api/history?from=YYYY-MM&to=YYYY-MM`: campaigns per cluster per
//!   month, cluster sizes and reject reasons from the batch outputs;
//! - `GET /api/model`: the LATEST model's version and cluster labels.
//!
//! A bad parameter is a 400 with `{"error": ...}`; a missing output is an
//! empty answer, since the stream may not have written anything yet.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::DashboardArgs;
use crate::engine;
use crate::layout;
use crate::model;

const PAGE: &str = include_str!("dashboard.html");

#[derive(Debug)]
struct Dirs {
    data: PathBuf,
    stream: PathBuf,
    models: PathBuf,
}

pub async fn run(args: &DashboardArgs, progress: bool) -> anyhow::Result<()> {
    let dirs = Arc::new(Dirs {
        data: args.data.clone(),
        stream: args.stream_data.clone(),
        models: args.models.clone(),
    });
    let app = axum::Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/live", get(live))
        .route("/api/history", get(history))
        .route("/api/model", get(model_labels))
        .with_state(dirs);
    let addr = SocketAddr::from((args.bind, args.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| crate::error::Error::Usage(format!("cannot listen on `{addr}`: {e}")))?;
    if progress {
        eprintln!("dashboard: http://{}/", listener.local_addr()?);
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the dashboard")
}

/// An answer: 200 with JSON, 400 for a bad request, 500 if a query failed.
enum Answer {
    Ok(Value),
    Bad(String),
    Failed(anyhow::Error),
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        match self {
            Answer::Ok(v) => Json(v).into_response(),
            Answer::Bad(m) => {
                (StatusCode::BAD_REQUEST, Json(json!({ "error": m }))).into_response()
            }
            Answer::Failed(e) => {
                tracing::error!("dashboard query failed: {e:#}");
                let body = json!({ "error": format!("{e:#}") });
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}

impl From<anyhow::Result<Value>> for Answer {
    fn from(r: anyhow::Result<Value>) -> Self {
        r.map_or_else(Answer::Failed, Answer::Ok)
    }
}

/// The tables under `dir`, opened once per request (so new stream files
/// show up); `None` when the directory does not exist yet.
async fn open(dir: &Path) -> anyhow::Result<Option<SessionContext>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(Some(engine::open_data(dir).await?))
}

/// Rows of a query as JSON objects; no rows when a table the query reads is
/// not there (an output not written yet).
async fn rows(
    ctx: Option<&SessionContext>,
    tables: &[&str],
    sql: &str,
) -> anyhow::Result<Vec<Value>> {
    let Some(ctx) = ctx else {
        return Ok(Vec::new());
    };
    if tables.iter().any(|t| !ctx.table_exist(*t).unwrap_or(false)) {
        return Ok(Vec::new());
    }
    let batches = ctx.sql(sql).await?.collect().await?;
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    for batch in &batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&bytes)?)
}

#[derive(Debug, Deserialize)]
struct LiveParams {
    windows: Option<String>,
}

async fn live(State(dirs): State<Arc<Dirs>>, Query(p): Query<LiveParams>) -> Answer {
    let windows = match p.windows.as_deref().map(str::parse::<u32>) {
        None => 30,
        Some(Ok(n)) if (1..=1440).contains(&n) => n,
        Some(_) => return Answer::Bad("`windows` must be a whole number from 1 to 1440".into()),
    };
    live_json(&dirs, windows).await.into()
}

async fn live_json(dirs: &Dirs, windows: u32) -> anyhow::Result<Value> {
    let sql = format!(
        "WITH latest AS (SELECT DISTINCT window_start FROM cluster_windows \
           ORDER BY window_start DESC LIMIT {windows}) \
         SELECT CAST(window_start AS VARCHAR) AS window_start, cluster_id, \
           max(window_secs) AS window_secs, sum(records) AS records, sum(outliers) AS outliers \
         FROM cluster_windows JOIN latest USING (window_start) \
         GROUP BY window_start, cluster_id ORDER BY window_start, cluster_id"
    );
    let ctx = open(&dirs.stream).await?;
    let found = rows(ctx.as_ref(), &[layout::CLUSTER_WINDOWS], &sql).await?;
    // `stream --online`: the latest births and deaths of topics.
    let events = rows(
        ctx.as_ref(),
        &[layout::TOPIC_EVENTS],
        "SELECT CAST(event_time AS VARCHAR) AS event_time, event, cluster_id, size, label, batch \
         FROM topic_events ORDER BY event_time DESC, batch DESC, cluster_id LIMIT 20",
    )
    .await?;
    let mut by_window: Vec<(String, Value)> = Vec::new();
    let (mut records, mut outliers, mut secs) = (0i64, 0i64, 60i64);
    for r in &found {
        let start = r["window_start"].as_str().unwrap_or_default().to_string();
        if by_window.last().map(|(s, _)| s) != Some(&start) {
            by_window.push((
                start.clone(),
                json!({ "start": start, "records": 0, "outliers": 0, "by_cluster": {} }),
            ));
        }
        let (n, o) = (
            r["records"].as_i64().unwrap_or(0),
            r["outliers"].as_i64().unwrap_or(0),
        );
        let w = &mut by_window.last_mut().expect("pushed above").1;
        w["records"] = json!(w["records"].as_i64().unwrap_or(0) + n);
        w["outliers"] = json!(w["outliers"].as_i64().unwrap_or(0) + o);
        w["by_cluster"][r["cluster_id"].to_string()] = json!(n);
        records += n;
        outliers += o;
        secs = r["window_secs"].as_i64().unwrap_or(secs);
    }
    let last = by_window
        .last()
        .map_or(0, |(_, w)| w["records"].as_i64().unwrap_or(0));
    Ok(json!({
        "window_secs": secs,
        "windows": by_window.into_iter().map(|(_, w)| w).collect::<Vec<_>>(),
        "records_per_sec": last as f64 / secs.max(1) as f64,
        "outlier_rate": if records > 0 { outliers as f64 / records as f64 } else { 0.0 },
        "topic_events": events,
        "model": model_json(&dirs.models),
    }))
}

async fn model_labels(State(dirs): State<Arc<Dirs>>) -> Answer {
    Answer::Ok(model_json(&dirs.models))
}

/// The LATEST model's version and labels, or `null` when there is none.
fn model_json(models: &Path) -> Value {
    let Ok(Some(version)) = model::latest_version(models) else {
        return Value::Null;
    };
    let Ok(text) = std::fs::read_to_string(models.join(&version).join("model.json")) else {
        return Value::Null;
    };
    let Ok(meta) = serde_json::from_str::<model::ModelMeta>(&text) else {
        return Value::Null;
    };
    let clusters: Vec<Value> = meta
        .clusters
        .iter()
        .map(|c| json!({ "cluster": c.cluster, "size": c.size, "label": c.top_terms.iter().take(4).cloned().collect::<Vec<_>>().join(", ") }))
        .collect();
    json!({ "version": version, "k": meta.k, "clusters": clusters })
}

#[derive(Debug, Deserialize)]
struct HistoryParams {
    from: Option<String>,
    to: Option<String>,
}

/// `YYYY-MM` with a real month.
fn month(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(s[5..].parse::<u8>(), Ok(1..=12))
}

async fn history(State(dirs): State<Arc<Dirs>>, Query(p): Query<HistoryParams>) -> Answer {
    let from = p.from.unwrap_or_else(|| "0000-01".into());
    let to = p.to.unwrap_or_else(|| "9999-12".into());
    for (name, value) in [("from", &from), ("to", &to)] {
        if !month(value) {
            return Answer::Bad(format!(
                "`{name}` must be a month as YYYY-MM, not `{value}`"
            ));
        }
    }
    if from > to {
        return Answer::Bad(format!("`from` ({from}) is after `to` ({to})"));
    }
    history_json(&dirs.data, &from, &to).await.into()
}

async fn history_json(data: &Path, from: &str, to: &str) -> anyhow::Result<Value> {
    let ctx = open(data).await?;
    let ctx = ctx.as_ref();
    // `from` and `to` were checked to be YYYY-MM above, so inlining them is safe.
    let over_time = rows(
        ctx,
        &["assignments", "campaigns"],
        &format!(
            "SELECT c.month, a.cluster_id, count(*) AS campaigns \
             FROM assignments a JOIN campaigns c USING (campaign_id) \
             WHERE c.month BETWEEN '{from}' AND '{to}' \
             GROUP BY c.month, a.cluster_id ORDER BY c.month, a.cluster_id"
        ),
    )
    .await?;
    let sizes = rows(
        ctx,
        &["clusters"],
        "SELECT cluster_id, size, array_to_string(array_slice(top_terms, 1, 4), ', ') AS label, \
         model_version FROM clusters ORDER BY size DESC",
    )
    .await?;
    let rejects = rows(
        ctx,
        &["rejects"],
        "SELECT reject_reason, count(*) AS records FROM rejects \
         GROUP BY reject_reason ORDER BY records DESC",
    )
    .await?;
    Ok(
        json!({ "from": from, "to": to, "clusters_over_time": over_time, "cluster_sizes": sizes, "reject_reasons": rejects }),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn months_are_checked() {
        assert!(super::month("2023-05"));
        assert!(!super::month("2023-13"));
        assert!(!super::month("2023-5"));
        assert!(!super::month("2023-05'; DROP"));
    }
}
