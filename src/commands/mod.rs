//! One module per command; each exposes `run`.

pub mod batch;
pub mod cluster;
pub mod dashboard;
pub mod generate;
pub mod preprocess;
pub mod produce;
pub mod progress;
pub mod score;
pub mod sql;
pub mod stream;
