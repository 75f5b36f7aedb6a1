//! Integration tests: the real `adlens` binary on real files, one temp dir per test.

mod bad_input;
mod batch;
mod broker;
mod cluster;
mod dashboard;
mod duplicates;
mod generate;
mod hostile;
mod online;
mod preprocess;
mod props;
mod real_sample;
mod s3;
mod sql;
mod sql_files;
mod stream;
mod support;
