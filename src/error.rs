//! The library's error type. Each variant names the thing at fault in
//! backticks, and says whether the user (bad input, exit 1) or adlens itself
//! (exit 2) is to blame.

use std::path::PathBuf;

/// Errors that mean the input or the request was bad, not adlens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file is missing, unreadable or not in the expected format.
    #[error("`{file}`{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Input {
        file: String,
        line: Option<u64>,
        message: String,
    },

    /// An output location cannot be used.
    #[error("`{}`: {message}", path.display())]
    Output { path: PathBuf, message: String },

    /// A Kafka topic cannot be read or written (unknown topic, broker gone,
    /// refused credentials).
    #[error("topic `{topic}`: {message}")]
    Kafka { topic: String, message: String },

    /// A query given by the user failed to plan or run.
    #[error("query failed: {0}")]
    Query(String),

    /// A command-line value that clap could not check by itself.
    #[error("{0}")]
    Usage(String),

    /// The work did not fit in the memory the user allowed.
    #[error(
        "out of memory while {phase}: `--memory-limit` {limit} was not enough; \
         raise `--memory-limit` (or lower `--partitions`)"
    )]
    Memory { phase: String, limit: String },
}

impl Error {
    pub fn input(file: impl Into<String>, line: Option<u64>, message: impl Into<String>) -> Self {
        Self::Input {
            file: file.into(),
            line,
            message: message.into(),
        }
    }

    pub fn output(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Output {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// `err` as an [`Error::Memory`] naming `phase` when DataFusion ran out of
/// its memory pool somewhere in it (its own message is logged, not shown as
/// the only line); otherwise `err` unchanged.
pub fn explain_memory(err: anyhow::Error, phase: &str, limit_bytes: usize) -> anyhow::Error {
    let exhausted = err.chain().any(|cause| {
        cause
            .downcast_ref::<datafusion::error::DataFusionError>()
            .is_some_and(|e| {
                matches!(
                    e.find_root(),
                    datafusion::error::DataFusionError::ResourcesExhausted(_)
                )
            })
            || cause.to_string().starts_with("Resources exhausted")
    });
    if !exhausted {
        return err;
    }
    tracing::warn!("{err:#}");
    Error::Memory {
        phase: phase.to_string(),
        limit: format!("{:.1} MiB", limit_bytes as f64 / (1u64 << 20) as f64),
    }
    .into()
}

/// Process exit codes, as documented in the README.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Bad input or data: the user can fix it.
    pub const BAD_INPUT: i32 = 1;
    /// Internal error: a bug, or the machine failed us.
    pub const INTERNAL: i32 = 2;
}

/// The exit code for an error: 1 when any cause in its chain is an [`Error`]
/// (the user's to fix), 2 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err
        .chain()
        .any(|cause| cause.downcast_ref::<Error>().is_some())
    {
        exit::BAD_INPUT
    } else {
        exit::INTERNAL
    }
}
