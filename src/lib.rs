//! adlens: turns raw dumps of ad-campaign records into clean, partitioned
//! Parquet and clusters people can act on.
//!
//! The binary is a thin shell over [`run`]. The cleaning rules live in
//! `sql/*.sql` plus the Rust functions of [`clean`], exposed to SQL as UDFs by
//! [`engine`]; every command that cleans records goes through that one session.

pub mod clean;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod csv_records;
pub mod dedup;
pub mod distributed;
pub mod engine;
pub mod env;
pub mod error;
pub mod generate;
pub mod id_scan;
pub mod ingest;
pub mod kafka;
pub mod layout;
pub mod logging;
pub mod manifest;
pub mod model;
pub mod raw_scan;
pub mod record;
pub mod reject;
pub mod storage;
pub mod stream;
pub mod writer;

use cli::{Cli, Command};

/// Runs one command line to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("adlens")
        .build()?;
    let progress = !cli.quiet;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Generate(args) => commands::generate::run(&args, progress),
            Command::Preprocess(args) => commands::preprocess::run(&args, progress).await,
            Command::Batch(args) => commands::batch::run(&args, progress).await,
            Command::Score(args) => commands::score::run(&args, progress).await,
            Command::Sql(args) => commands::sql::run(&args).await,
            Command::Stream(args) => commands::stream::run(&args, progress).await,
            Command::Produce(args) => commands::produce::run(&args, progress).await,
            Command::Dashboard(args) => commands::dashboard::run(&args, progress).await,
            Command::Cluster(command) => commands::cluster::run(command).await,
        }
    });
    // Outputs are committed or cleaned up by now. Do not wait for a reader
    // thread still blocked on a slow pipe or network stream after an
    // interruption: that would turn Ctrl-C into a hang.
    runtime.shutdown_background();
    result
}
