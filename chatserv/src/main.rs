//! `chatserv`: a group-chat server over WebSocket (RFC 6455), built on
//! `wsproto`.
//!
//! Each client connects to `ws://HOST:PORT/?user=NAME`; every text message
//! it sends reaches every other logged-in user as `"<msg> -- FROM <user>"`.
//! A browser opening `http://HOST:PORT/` gets a small chat page.
//!
//! Layout:
//! - [`cli`]: command-line options;
//! - [`server`]: accept loop, orderly shutdown; [`state`]: settings and
//!   the state all connections share; [`capacity`]: how many connections
//!   the machine's limits allow;
//! - [`connection`]: request head, plain HTTP, admission, upgrade;
//! - [`live`]: a live connection's reader loop (its only thread);
//! - [`outlet`]: a connection's sending side, [`pool`]: the writer pool
//!   that finishes writes a full socket could not take; [`workers`]:
//!   connection threads, reused from one connection to the next;
//! - [`hub`]: the user registry and the broadcast;
//! - [`session`]: the handle the hub holds on a connection;
//! - [`gate`]: who may open a WebSocket (Origin, login), [`auth`]: signed
//!   logins (HS256 JWT), [`flood`]: rate and per-IP limits;
//! - [`http`]: the web page and plain HTTP answers;
//! - [`shutdown`]: Ctrl-C / SIGTERM;
//! - [`cluster`]: many nodes, one chat, through Redis (`--redis`);
//! - [`admin`]: `/livez`, `/readyz`, `/metrics`, `/users`; [`metrics`].

mod admin;
mod auth;
mod capacity;
mod cli;
mod cluster;
mod connection;
mod error;
mod flood;
mod gate;
mod http;
mod hub;
mod live;
mod metrics;
mod outlet;
mod pool;
mod server;
mod session;
mod shutdown;
mod state;
mod workers;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if let Some(cli::Command::Token(token)) = &args.command {
        return print_token(token);
    }
    if let Err(why) = args.validate() {
        use clap::CommandFactory;
        cli::Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, why)
            .exit();
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();

    let result = shutdown::Shutdown::install().and_then(|signals| server::run(&args, signals));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Bad --tls-cert / --tls-key files: a usage error.
        Err(e @ error::Error::TlsConfig(_)) => {
            eprintln!("chatserv: error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("chatserv: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `chatserv token`: print a signed login token on stdout.
fn print_token(token: &cli::TokenArgs) -> ExitCode {
    let secret = match auth::load_secret(token.secret_file.as_deref()) {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            eprintln!(
                "chatserv: error: no secret: give --secret-file FILE (or set {})",
                auth::SECRET_ENV
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("chatserv: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let signer = auth::Auth::new(secret, None);
    println!(
        "{}",
        signer.sign(
            &token.user,
            auth::now(),
            token.ttl.as_secs().max(1),
            token.audience.as_deref()
        )
    );
    ExitCode::SUCCESS
}
