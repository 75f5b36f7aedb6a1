//! Where data lives: local paths, `file://` and `s3://` URLs, one rule for
//! every part of adlens (the raw inputs, the DataFusion sessions of the CLI,
//! the scheduler and the executors of a cluster).
//!
//! Object stores are opened from the URL and the standard `AWS_*` variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...), so the same environment that
//! serves the `aws` CLI serves adlens, on every node of a cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use futures::StreamExt;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

/// The object store serving `url` and the path inside it, opened with the
/// `AWS_*` settings of the environment.
pub fn open_url(url: &Url) -> std::result::Result<(Arc<dyn ObjectStore>, StorePath), String> {
    let (store, path) =
        object_store::parse_url_opts(url, store_options()).map_err(|e| describe(&e))?;
    Ok((Arc::from(store), path))
}

/// An object store error on one line: S3 servers answer with an XML body
/// that `object_store` quotes whole; its `<Code>` (`NoSuchBucket`,
/// `InvalidAccessKeyId`, ...) is what a user needs from it.
pub fn describe(error: &dyn fmt::Display) -> String {
    let text = error.to_string();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.trim().to_string());
    let head = text.split("<?xml").next().unwrap_or_default();
    let head = head.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    let head = head.trim().trim_end_matches(':').trim();
    match code {
        Some(code) => format!("{head} ({code})"),
        None => head.to_string(),
    }
}

/// `AWS_*` variables as `object_store` configuration keys (`aws_region`, ...).
/// `AWS_ENDPOINT_URL` is the name the AWS SDKs use; `object_store` calls it
/// `aws_endpoint`.
fn store_options() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(key, _)| key.starts_with("AWS_"))
        .map(|(key, value)| {
            let key = match key.as_str() {
                "AWS_ENDPOINT_URL" => "aws_endpoint".to_string(),
                _ => key.to_ascii_lowercase(),
            };
            (key, value)
        })
        .collect()
}

/// A DataFusion object store registry that opens a store for any `s3://`
/// bucket on first use, from the environment, instead of requiring each one
/// to be registered up front: a query, a scheduler planning it and an
/// executor running it all resolve the same URLs the same way.
#[derive(Debug, Default)]
pub struct Registry {
    stores: DefaultObjectStoreRegistry,
}

impl Registry {
    /// The registry as DataFusion's runtime takes it.
    pub fn shared() -> Arc<dyn ObjectStoreRegistry> {
        Arc::new(Self::default())
    }
}

impl ObjectStoreRegistry for Registry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.stores.get_store(url) {
            return Ok(store);
        }
        // Two tasks may open the same bucket at once; either store serves.
        let (store, _) = open_url(url).map_err(|e| {
            DataFusionError::Execution(format!("cannot open object store for `{url}`: {e}"))
        })?;
        self.stores.register_store(url, Arc::clone(&store));
        Ok(store)
    }
}

/// A data location as users give it: a local directory, or an object store
/// prefix (`s3://bucket/prefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory (also written `file:///path`).
    Local(PathBuf),
    /// A prefix in an object store.
    Store(Url),
}

impl FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(Self::Local(PathBuf::from(path)));
        }
        if !s.contains("://") {
            return Ok(Self::Local(PathBuf::from(s)));
        }
        let mut url = Url::parse(s).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("`{s}` names no bucket"));
        }
        // A prefix is a directory: `s3://b/p` and `s3://b/p/` are the same place.
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(Self::Store(url))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Store(url) => write!(f, "{url}"),
        }
    }
}

/// The object holding the id of the published run under an output prefix:
/// written last, so readers never see a half-uploaded run.
pub const LATEST_RUN: &str = "_LATEST";
/// Where each run's files go under an output prefix (`runs/<id>/...`).
pub const RUNS: &str = "runs";

/// A table found under an object store prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreTable {
    /// The table's name: its top-level directory.
    pub name: String,
    /// The URL of its directory (ending in `/`).
    pub url: Url,
    /// Its `key=value` directory levels, outermost first.
    pub partition_columns: Vec<String>,
}

/// The prefix an adlens output at `url` serves: its published run when it
/// has a [`LATEST_RUN`] pointer, else `url` itself (plain Parquet directories
/// written by other tools).
pub async fn published_prefix(url: &Url) -> std::result::Result<Url, String> {
    let (store, prefix) = open_url(url)?;
    match latest_run(&store, &prefix).await? {
        Some(run) => url
            .join(&format!("{RUNS}/{run}/"))
            .map_err(|e| e.to_string()),
        None => Ok(url.clone()),
    }
}

/// The run [`LATEST_RUN`] under `prefix` names, if any.
async fn latest_run(
    store: &Arc<dyn ObjectStore>,
    prefix: &StorePath,
) -> std::result::Result<Option<String>, String> {
    match store.get(&prefix.clone().join(LATEST_RUN)).await {
        Ok(result) => {
            let bytes = result.bytes().await.map_err(|e| describe(&e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(describe(&e)),
    }
}

/// Every table under `url`: the Parquet files grouped by their first
/// directory, partition columns read off the `key=value` levels below it.
pub async fn find_tables(url: &Url) -> std::result::Result<Vec<StoreTable>, String> {
    let (store, prefix) = open_url(url)?;
    let mut files = store.list(Some(&prefix));
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(meta) = files.next().await {
        let meta = meta.map_err(|e| describe(&e))?;
        let Some(relative) = meta.location.prefix_match(&prefix) else {
            continue;
        };
        let parts: Vec<String> = relative.map(|p| p.as_ref().to_string()).collect();
        let Some((file, dirs)) = parts.split_last() else {
            continue;
        };
        let Some((table, levels)) = dirs.split_first() else {
            continue;
        };
        if !file.ends_with(".parquet") || table.starts_with(['.', '_']) {
            continue;
        }
        tables.entry(table.clone()).or_insert_with(|| {
            levels
                .iter()
                .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
                .collect()
        });
    }
    tables
        .into_iter()
        .map(|(name, partition_columns)| {
            let url = url.join(&format!("{name}/")).map_err(|e| describe(&e))?;
            Ok(StoreTable {
                name,
                url,
                partition_columns,
            })
        })
        .collect()
}

/// Uploads every file under `dir` to a new run under `url`, then points
/// [`LATEST_RUN`] at it (the last write: until then readers see the previous
/// run whole), then deletes runs older than the one it replaced. Returns the
/// new run's id.
pub async fn publish_run(dir: &Path, url: &Url) -> std::result::Result<String, String> {
    let (store, prefix) = open_url(url)?;
    let previous = latest_run(&store, &prefix).await?;
    let run = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    let run_prefix = prefix.clone().join(RUNS).join(run.as_str());
    for file in local_files(dir).map_err(|e| format!("`{}`: {e}", dir.display()))? {
        let relative = file.strip_prefix(dir).map_err(|e| describe(&e))?;
        let mut target = run_prefix.clone();
        for part in relative.iter() {
            target = target.join(part.to_string_lossy().as_ref());
        }
        upload(&store, &file, &target).await?;
    }
    store
        .put(
            &prefix.clone().join(LATEST_RUN),
            run.clone().into_bytes().into(),
        )
        .await
        .map_err(|e| describe(&e))?;
    remove_old_runs(&store, &prefix, &[Some(run.as_str()), previous.as_deref()]).await;
    Ok(run)
}

/// Regular files under `dir`, recursively.
fn local_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Streams one file to the store (multipart above a few MiB).
async fn upload(
    store: &Arc<dyn ObjectStore>,
    file: &Path,
    target: &StorePath,
) -> std::result::Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let fail = |e: &dyn fmt::Display| format!("uploading `{}`: {}", file.display(), describe(e));
    let mut source = tokio::fs::File::open(file).await.map_err(|e| fail(&e))?;
    let mut sink = object_store::buffered::BufWriter::new(Arc::clone(store), target.clone());
    tokio::io::copy(&mut source, &mut sink)
        .await
        .map_err(|e| fail(&e))?;
    sink.shutdown().await.map_err(|e| fail(&e))
}

/// Deletes every run under `prefix` not in `keep`. The run just replaced is
/// kept, so a query that started on it can finish; failures are only logged
/// (the pointer already names the new run).
async fn remove_old_runs(store: &Arc<dyn ObjectStore>, prefix: &StorePath, keep: &[Option<&str>]) {
    let runs = prefix.clone().join(RUNS);
    let mut listed = store.list(Some(&runs));
    let mut stale = Vec::new();
    while let Some(Ok(meta)) = listed.next().await {
        let run = meta
            .location
            .prefix_match(&runs)
            .and_then(|mut parts| parts.next())
            .map(|p| p.as_ref().to_string());
        if run.as_deref().is_some_and(|r| !keep.contains(&Some(r))) {
            stale.push(meta.location);
        }
    }
    for location in stale {
        if let Err(e) = store.delete(&location).await {
            tracing::warn!("could not delete old run file `{location}`: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_paths_or_store_prefixes() {
        assert_eq!(
            "data/clean".parse::<Location>(),
            Ok(Location::Local(PathBuf::from("data/clean")))
        );
        assert_eq!(
            "file:///srv/clean".parse::<Location>(),
            Ok(Location::Local(PathBuf::from("/srv/clean")))
        );
        let store = "s3://lake/campaigns".parse::<Location>().unwrap();
        assert_eq!(store.to_string(), "s3://lake/campaigns/");
        assert_eq!("s3://lake/campaigns/".parse::<Location>(), Ok(store));
        assert!("s3:///nobucket".parse::<Location>().is_err());
    }

    #[test]
    fn store_errors_keep_the_head_and_the_s3_code() {
        let error = "Error performing GET http://h/b in 5ms - Server returned non-2xx status code: \
                     404 Not Found: <?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code>\
                     <Message>gone</Message></Error>";
        assert_eq!(
            describe(&error),
            "Error performing GET http://h/b in 5ms - Server returned non-2xx status code: \
             404 Not Found (NoSuchBucket)"
        );
        assert_eq!(describe(&"two\nlines"), "two lines");
    }
}
