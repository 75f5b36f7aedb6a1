//! The `adlens` binary: parse the command line, run it, map the outcome to an
//! exit code (0 success, 1 bad input or data, 2 internal error).

use clap::Parser;

/// See `Cargo.toml`: the cleaning path allocates many short strings per row.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = adlens::cli::Cli::parse();
    adlens::logging::init(cli.verbose, cli.quiet);
    let code = match adlens::run(cli) {
        Ok(()) => adlens::error::exit::OK,
        Err(err) => {
            eprintln!("error: {err:#}");
            adlens::error::exit_code(&err)
        }
    };
    std::process::exit(code);
}
