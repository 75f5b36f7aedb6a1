//! Logging to stderr with `tracing`. `ADLENS_LOG` (a tracing filter) wins over
//! the `-v` count; stdout stays free for data.

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber; call once, before any command runs.
pub fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "adlens=info,ballista_scheduler=info,ballista_executor=info",
        (false, _) => "adlens=debug,datafusion=info",
    };
    let filter = EnvFilter::try_from_env(crate::env::EnvVars::ADLENS_LOG)
        .unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
