//! One module per command; each exposes `run`.

pub mod generate;
pub mod preprocess;
pub mod progress;
pub mod sql;
