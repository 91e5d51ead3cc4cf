//! `chatcli`: a group chat client over wsproto.
//!
//! ```text
//! chatcli --user aaa [--addr ws://127.0.0.1:8000] [--interval 6s] [--message hello]
//!         [--count N] [--linger 1s] [--interactive]
//! ```
//!
//! Connects to `<addr>/?user=<user>`, sends `--message` every `--interval`
//! (or each stdin line with `--interactive`), prints every message received
//! on stdout, one per line, and logs to stderr. See `--help` for the exit
//! codes and [`client`] for how the connection is driven.

mod cli;
mod client;
mod error;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match client::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Printed plainly as well as logged, so it shows with RUST_LOG=off.
            tracing::debug!(error = ?e, "session failed");
            eprintln!("chatcli: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
