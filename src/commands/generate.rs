//! `adlens generate`: writes a synthetic dump (and optionally its hidden
//! topics) through temporary files renamed into place.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::GenerateArgs;
use crate::error::Error;
use crate::generate::{GeneratorConfig, write_dump};

pub fn run(args: &GenerateArgs, progress: bool) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.dirty_rate) {
        return Err(Error::Usage(format!(
            "--dirty-rate must be between 0 and 1, got {}",
            args.dirty_rate
        ))
        .into());
    }
    let started = Instant::now();
    let out = TempFile::create(&args.out)?;
    let truth = args.truth.as_deref().map(TempFile::create).transpose()?;
    let bar = ProgressBar::with_draw_target(
        Some(args.rows),
        if progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} {wide_bar} {pos}/{len} rows {per_sec} ETA {eta}")
            .expect("valid template"),
    );
    let config = GeneratorConfig {
        rows: args.rows,
        seed: args.seed,
        dirty_rate: args.dirty_rate,
    };
    let mut truth_writer = truth.as_ref().map(|t| BufWriter::new(&t.file));
    let rows = write_dump(
        config,
        BufWriter::with_capacity(1 << 20, &out.file),
        truth_writer.as_mut().map(|w| w as &mut dyn Write),
        |n| bar.set_position(n),
    )
    .with_context(|| format!("writing `{}`", args.out.display()))?;
    drop(truth_writer);
    bar.finish_and_clear();
    out.commit()?;
    if let Some(t) = truth {
        t.commit()?;
    }
    if progress {
        let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "generated {rows} records ({:.1} MB) in {:.1}s -> {}",
            size as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            args.out.display()
        );
    }
    Ok(())
}

/// A file written beside its target and renamed over it on commit, removed if dropped.
struct TempFile {
    file: File,
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempFile {
    fn create(target: &Path) -> Result<Self, Error> {
        let name = target
            .file_name()
            .ok_or_else(|| Error::output(target, "has no file name"))?;
        let tmp = target.with_file_name(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::output(target, crate::ingest::io_message(&e)))?;
        }
        let file =
            File::create(&tmp).map_err(|e| Error::output(target, crate::ingest::io_message(&e)))?;
        Ok(Self {
            file,
            tmp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    fn commit(mut self) -> anyhow::Result<()> {
        self.file.sync_all()?;
        std::fs::rename(&self.tmp, &self.target)
            .with_context(|| format!("renaming into `{}`", self.target.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
