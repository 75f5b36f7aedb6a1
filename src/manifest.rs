//! `_manifest.json`: what a preprocess run read, what it wrote, how long it
//! took and which rules made it. Later commands (batch training) read it to
//! record their inputs and to skip work when nothing changed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Version of this manifest's layout; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format_version: u32,
    pub adlens_version: String,
    /// When the run finished, RFC 3339 UTC.
    pub created_at: String,
    /// SHA-256 of the SQL files that shaped the output.
    pub sql_sha256: String,
    pub inputs: Vec<InputEntry>,
    pub counts: Counts,
    pub outputs: BTreeMap<String, OutputEntry>,
    pub timings_ms: BTreeMap<String, u64>,
    pub settings: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputEntry {
    pub path: String,
    pub bytes: u64,
    pub modified: Option<String>,
}

/// Where every input record went: `records_in = rows_out + rejected + duplicates_dropped`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub records_in: u64,
    pub rows_out: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub duplicates_dropped: u64,
}

impl Counts {
    /// True when no record is unaccounted for.
    pub fn balanced(&self) -> bool {
        self.records_in == self.rows_out + self.rejected + self.duplicates_dropped
            && self.rejected == self.rejected_by_reason.values().sum::<u64>()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputEntry {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    /// Partition values present, for partitioned tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
}

impl Manifest {
    /// Reads `dir/_manifest.json`.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(crate::layout::MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::input(
                path.display().to_string(),
                None,
                crate::ingest::io_message(&e),
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::input(
                path.display().to_string(),
                Some(e.line() as u64),
                e.to_string(),
            )
        })
    }

    /// Writes `dir/_manifest.json`, pretty-printed.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(crate::layout::MANIFEST), text + "\n")
    }
}

/// Rows, files and bytes of a Parquet table directory, with its partitions.
pub fn describe_output(dir: &Path, rows: u64) -> std::io::Result<OutputEntry> {
    let mut entry = OutputEntry {
        rows,
        files: 0,
        bytes: 0,
        partitions: Vec::new(),
    };
    if !dir.exists() {
        return Ok(entry);
    }
    for item in std::fs::read_dir(dir)? {
        let path = item?.path();
        if path.is_dir() {
            if let Some(value) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split_once('='))
            {
                entry.partitions.push(value.1.to_string());
            }
            let sub = describe_output(&path, 0)?;
            entry.files += sub.files;
            entry.bytes += sub.bytes;
        } else if path.extension().is_some_and(|x| x == "parquet") {
            entry.files += 1;
            entry.bytes += path.metadata()?.len();
        }
    }
    entry.partitions.sort();
    Ok(entry)
}
