//! The data directory layout (see `data/README.md`): its tables, the
//! schemas of those adlens builds row by row, and how outputs reach it:
//! every command writes into a hidden temporary sibling and renames it into
//! place only when everything succeeded, so readers never see half a data set.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::Error;
use crate::ingest::io_message;

/// Cleaned campaigns, Hive-partitioned by `month`.
pub const CAMPAIGNS: &str = "campaigns";
/// Records not kept, with their reason.
pub const REJECTS: &str = "rejects";
/// Counts, inputs, timings and versions of the run that made the directory.
pub const MANIFEST: &str = "_manifest.json";
/// Per-campaign cluster assignments (written by `batch` and `score`).
pub const ASSIGNMENTS: &str = "assignments";
/// Cluster labels of the model that made `assignments`.
pub const CLUSTERS: &str = "clusters";
/// The partition column of `campaigns`.
pub const PARTITION_COLUMN: &str = "month";

/// The stream's table of scored records (`stream --data`).
pub const SCORED: &str = "scored";
/// The stream's per-window cluster counts.
pub const CLUSTER_WINDOWS: &str = "cluster_windows";
/// The stream's refused records, with their reason.
pub const DEAD_LETTERS: &str = "dead_letters";
/// The stream's online topics' births and deaths (`--online`).
pub const TOPIC_EVENTS: &str = "topic_events";

/// A timestamp in microseconds, without time zone (UTC).
fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, None),
        nullable,
    )
}

/// The columns of [`SCORED`].
pub fn scored_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("campaign_id", DataType::Int64, false),
        timestamp("created_at", true),
        timestamp("processed_at", false),
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("distance", DataType::Float32, false),
        Field::new("outlier", DataType::Boolean, false),
        Field::new("model_version", DataType::Utf8, false),
        Field::new("domain", DataType::Utf8, true),
        Field::new("host", DataType::Utf8, true),
        Field::new("title", DataType::Utf8, true),
        Field::new("lang", DataType::Utf8, true),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
    ]))
}

/// The columns of [`CLUSTER_WINDOWS`].
pub fn cluster_windows_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        timestamp("window_start", false),
        Field::new("window_secs", DataType::Int64, false),
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("model_version", DataType::Utf8, false),
        Field::new("records", DataType::Int64, false),
        Field::new("outliers", DataType::Int64, false),
        Field::new("distance_sum", DataType::Float64, false),
        Field::new("mean_distance", DataType::Float64, false),
    ]))
}

/// The columns of [`DEAD_LETTERS`].
pub fn dead_letters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        timestamp("processed_at", false),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, true),
        Field::new("payload", DataType::Utf8, true),
    ]))
}

/// The columns of [`TOPIC_EVENTS`].
pub fn topic_events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        timestamp("event_time", false),
        Field::new("event", DataType::Utf8, false),
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("size", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("batch", DataType::Int64, false),
        Field::new("model_version", DataType::Utf8, false),
    ]))
}

/// The columns of [`ASSIGNMENTS`]: one row per campaign.
pub fn assignments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("campaign_id", DataType::Int64, false),
        // `cluster` is a reserved word in SQL (`CLUSTER BY`): `cluster_id` needs no quoting.
        Field::new("cluster_id", DataType::UInt32, false),
        Field::new("distance", DataType::Float32, false),
        Field::new("model_version", DataType::Utf8, false),
    ]))
}

/// Writes a small file whole or not at all: `bytes` go to a hidden sibling
/// (`.NAME.tmp-PID`), are synced, and the sibling is renamed onto `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::File::open(&tmp)?.sync_all()?;
    fs::rename(tmp, path)
}

/// A temporary directory that becomes `target` on [`StagedDir::commit`] and
/// disappears if dropped before that (a failed run leaves `target` as it was).
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    tmp: PathBuf,
    /// Set once published: whether an old output was replaced.
    replaced: Option<bool>,
    committed: bool,
}

impl StagedDir {
    /// Checks that `target` may be replaced and creates the staging directory
    /// beside it. An existing non-empty directory that is not an adlens output
    /// is refused rather than replaced.
    pub fn create(target: &Path) -> Result<Self, Error> {
        let fail = |message: String| Error::output(target, message);
        if target.exists() {
            if !target.is_dir() {
                return Err(fail("exists and is not a directory".into()));
            }
            let empty = fs::read_dir(target)
                .map_err(|e| fail(io_message(&e)))?
                .next()
                .is_none();
            if !empty && !target.join(MANIFEST).exists() {
                return Err(fail(format!(
                    "exists and is not an adlens output (no `{MANIFEST}`); refusing to replace it"
                )));
            }
        }
        let name = target
            .file_name()
            .ok_or_else(|| fail("has no directory name".into()))?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent)
            .map_err(|e| fail(format!("cannot create parent: {}", io_message(&e))))?;
        repair_swap(target, &parent, &name.to_string_lossy()).map_err(|e| {
            fail(format!(
                "cannot repair an interrupted swap: {}",
                io_message(&e)
            ))
        })?;
        let prefix = format!(".{}.tmp-", name.to_string_lossy());
        remove_abandoned(&parent, &prefix);
        let tmp = parent.join(format!("{prefix}{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).map_err(|e| fail(format!("cannot write here: {}", io_message(&e))))?;
        Ok(Self {
            target: target.to_path_buf(),
            tmp,
            replaced: None,
            committed: false,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the staged directory into place: an atomic exchange with the old
    /// output where the file system allows it, whose remains are then removed.
    pub fn commit(self) -> io::Result<()> {
        commit_all(vec![self])
    }

    /// Puts the staged directory in place; an old output ends up at the
    /// staging path until [`commit_all`] removes it or [`Self::unpublish`]
    /// puts it back.
    fn publish(&mut self) -> io::Result<()> {
        let replaces = self.target.exists();
        if replaces {
            exchange(&self.tmp, &self.target)?;
        } else {
            fs::rename(&self.tmp, &self.target)?;
        }
        self.replaced = Some(replaces);
        Ok(())
    }

    /// Undoes [`Self::publish`].
    fn unpublish(&self) -> io::Result<()> {
        match self.replaced {
            Some(true) => exchange(&self.tmp, &self.target),
            Some(false) => fs::rename(&self.target, &self.tmp),
            None => Ok(()),
        }
    }
}

/// Publishes staged directories together: each is swapped into place, and
/// the old copies are removed only once every swap succeeded. If one fails,
/// those already swapped are swapped back, so the outputs stay all old.
pub fn commit_all(mut dirs: Vec<StagedDir>) -> io::Result<()> {
    for i in 0..dirs.len() {
        if let Err(e) = dirs[i].publish() {
            for done in dirs[..i].iter().rev() {
                if let Err(undo) = done.unpublish() {
                    tracing::error!(
                        "cannot put back `{}` after a failed commit: {}",
                        done.target.display(),
                        io_message(&undo)
                    );
                }
            }
            return Err(e);
        }
    }
    for dir in &mut dirs {
        dir.committed = true;
        if dir.replaced == Some(true) {
            fs::remove_dir_all(&dir.tmp)?;
        }
    }
    Ok(())
}

/// Exchanges two existing directories: atomically where the file system
/// has `RENAME_EXCHANGE`, else by moving `b` aside under a name of its own
/// first. A crash between those renames leaves only the old copy, which the
/// next run puts back (see `repair_swap`).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    let flags = rustix::fs::RenameFlags::EXCHANGE;
    if rustix::fs::renameat_with(rustix::fs::CWD, a, rustix::fs::CWD, b, flags).is_ok() {
        return Ok(());
    }
    let old = old_copy_name(b);
    fs::rename(b, &old)?;
    fs::rename(a, b)?;
    fs::rename(&old, a)
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Where [`StagedDir::commit`] parks the old output while it swaps without
/// `RENAME_EXCHANGE`: hidden, unique per process and moment.
fn old_copy_name(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    target.with_file_name(format!(".{name}.old-{}-{nanos}", std::process::id()))
}

/// Finishes or undoes a swap a crash interrupted: with no `target` but a
/// parked old copy, the old copy goes back (the new output was never
/// published); with `target` in place, parked copies are leftovers.
fn repair_swap(target: &Path, parent: &Path, name: &str) -> io::Result<()> {
    let prefix = format!(".{name}.old-");
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(());
    };
    let mut parked: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    // The newest parked copy is the one a crash stranded.
    parked.sort_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok());
    if !target.exists()
        && let Some(newest) = parked.pop()
    {
        tracing::warn!(
            "restoring `{}` from `{}`, left by an interrupted run",
            target.display(),
            newest.display()
        );
        fs::rename(&newest, target)?;
    }
    for leftover in parked {
        fs::remove_dir_all(&leftover)?;
    }
    Ok(())
}

/// Removes staging directories left by runs that were killed (their process
/// is gone), so they do not pile up.
fn remove_abandoned(parent: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
        if !alive {
            tracing::info!(
                "removing abandoned staging directory `{}`",
                entry.path().display()
            );
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Every `.parquet` file under `dir` (searched recursively, hidden
/// in-progress files excluded by their extension), sorted by path.
pub fn parquet_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A Parquet table found under a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundTable {
    /// Table name: the directory name.
    pub name: String,
    /// The table's directory.
    pub path: PathBuf,
    /// Hive partition columns (`month=...` directories), outermost first.
    pub partition_columns: Vec<String>,
}

/// Every directory under `data` holding Parquet files (directly or in
/// `key=value` subdirectories), in name order. Hidden and `_` entries are skipped.
pub fn find_tables(data: &Path) -> io::Result<Vec<FoundTable>> {
    let mut tables = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(data)?.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !path.is_dir() || name.starts_with(['.', '_']) {
            continue;
        }
        let mut partition_columns = Vec::new();
        let mut dir = path.clone();
        loop {
            let sub = fs::read_dir(&dir)?.flatten().map(|e| e.path()).find(|p| {
                p.is_dir()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains('='))
            });
            match sub {
                Some(sub) => {
                    let dir_name = sub.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    partition_columns
                        .push(dir_name.split('=').next().unwrap_or_default().to_string());
                    dir = sub;
                }
                None => break,
            }
        }
        let has_parquet = fs::read_dir(&dir)?
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "parquet"));
        if has_parquet {
            tables.push(FoundTable {
                name,
                path,
                partition_columns,
            });
        }
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swap_interrupted_by_a_crash_is_undone_before_the_next_run() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("clean");
        // The crash came between moving the old output aside and moving the
        // new one in: only the parked copy is left.
        let parked = tmp.path().join(".clean.old-123-456");
        fs::create_dir(&parked).unwrap();
        fs::write(parked.join(MANIFEST), "{}").unwrap();
        let staged = StagedDir::create(&target).unwrap();
        assert!(target.join(MANIFEST).exists(), "the old output is back");
        assert!(!parked.exists());
        fs::write(staged.path().join(MANIFEST), "{\"new\": 1}").unwrap();
        staged.commit().unwrap();
        assert_eq!(
            fs::read_to_string(target.join(MANIFEST)).unwrap(),
            "{\"new\": 1}"
        );
        let left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["clean"]);
    }

    /// A staged output with one file holding `text`, replacing `target`.
    fn staged(target: &Path, text: &str) -> StagedDir {
        let staged = StagedDir::create(target).unwrap();
        fs::write(staged.path().join(MANIFEST), text).unwrap();
        staged
    }

    #[test]
    fn outputs_committed_together_stay_all_old_when_one_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        commit_all(vec![staged(&a, "old a"), staged(&b, "old b")]).unwrap();
        let broken = staged(&c, "new c");
        // Publishing `c` fails: its staging directory is gone.
        fs::remove_dir_all(broken.path()).unwrap();
        let failed = commit_all(vec![staged(&a, "new a"), staged(&b, "new b"), broken]);
        assert!(failed.is_err());
        assert_eq!(fs::read_to_string(a.join(MANIFEST)).unwrap(), "old a");
        assert_eq!(fs::read_to_string(b.join(MANIFEST)).unwrap(), "old b");
        assert!(!c.exists());
        let mut left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["a", "b"], "no staging directory is left behind");
    }
}
