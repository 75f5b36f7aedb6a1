//! Model hot reload: `models/LATEST` is polled; a new version is loaded and
//! validated on a blocking thread, off the hot path, and handed over between
//! micro-batches. A version that fails to load is refused once (logged) and
//! the model in service keeps scoring.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::model::{self, Model};

/// Watches a models directory for a new `LATEST`.
#[derive(Debug)]
pub struct ModelWatch {
    models: PathBuf,
    interval: Duration,
    last_check: Instant,
    current: String,
    refused: Option<String>,
    loading: Option<(String, JoinHandle<Result<Model, Error>>)>,
}

impl ModelWatch {
    /// Watches `models`, where `current` is the version in service.
    pub fn new(models: &Path, current: &str, interval: Duration) -> Self {
        Self {
            models: models.to_path_buf(),
            interval,
            last_check: Instant::now(),
            current: current.to_string(),
            refused: None,
            loading: None,
        }
    }

    /// A newly loaded model to swap in, if one is ready. Never blocks.
    pub fn poll(&mut self) -> Option<Model> {
        if let Some((version, handle)) = self.loading.take() {
            if !handle.is_finished() {
                self.loading = Some((version, handle));
                return None;
            }
            return self.finish_load(version, handle);
        }
        if self.last_check.elapsed() >= self.interval {
            self.last_check = Instant::now();
            self.check_latest();
        }
        None
    }

    fn check_latest(&mut self) {
        let version = match model::latest_version(&self.models) {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("cannot read the latest model version: {e}");
                return;
            }
        };
        if version == self.current || self.refused.as_ref() == Some(&version) {
            return;
        }
        tracing::info!("loading model `{version}`");
        let dir = self.models.join(&version);
        let handle = tokio::task::spawn_blocking(move || Model::load(&dir));
        self.loading = Some((version, handle));
    }

    fn finish_load(
        &mut self,
        version: String,
        handle: JoinHandle<Result<Model, Error>>,
    ) -> Option<Model> {
        let outcome = match handle.now_or_never() {
            Some(Ok(Ok(model))) if model.meta.version == version => Ok(model),
            Some(Ok(Ok(model))) => Err(format!(
                "its model.json says version `{}`",
                model.meta.version
            )),
            Some(Ok(Err(e))) => Err(e.to_string()),
            Some(Err(e)) => Err(format!("loading failed: {e}")),
            None => Err("loading did not finish".into()),
        };
        match outcome {
            Ok(model) => {
                tracing::info!(
                    "switching from model `{}` to `{version}` (k={})",
                    self.current,
                    model.meta.k
                );
                self.current = version;
                Some(model)
            }
            Err(reason) => {
                tracing::error!(
                    "refusing model `{version}`: {reason}; still serving `{}`",
                    self.current
                );
                self.refused = Some(version);
                None
            }
        }
    }
}
