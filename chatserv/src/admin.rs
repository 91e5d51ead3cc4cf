//! The operator's port (`--admin-listen`): `/livez`, `/readyz`, `/metrics`
//! (Prometheus text format) and `/users`; and `/users` on the chat port.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};
use wsproto::{read_request, Request, Response};

use crate::state::Shared;

/// Options of the admin port (flattened into [`crate::cli::Args`]).
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Serve `/livez`, `/readyz`, `/metrics` (Prometheus) and `/users` on
    /// this address, e.g. `127.0.0.1:9100`. Off by default. Keep it off
    /// the public network.
    #[arg(long, value_name = "ADDR", value_parser = crate::cli::parse_listen)]
    pub admin_listen: Option<SocketAddr>,
}

/// `GET /users`: who is online (across the cluster in cluster mode), as
/// JSON. `None` for any other request.
pub fn users_response(request: &Request, shared: &Shared) -> Option<Response> {
    if request.path() != "/users" || request.method() != "GET" {
        return None;
    }
    Some(json(200, users_json(shared)))
}

fn users_json(shared: &Shared) -> String {
    let local: Vec<String> = shared
        .hub
        .snapshot()
        .into_iter()
        .map(|(u, _)| u.to_string())
        .collect();
    match shared.hub.cluster() {
        Some(cluster) => cluster.users_json(local),
        None => serde_json::json!({ "online": local.len(), "users": local }).to_string(),
    }
}

fn json(status: u16, body: String) -> Response {
    Response::new(status)
        .with_header("Content-Type", "application/json")
        .with_header("Cache-Control", "no-cache")
        .with_header("Content-Length", &body.len().to_string())
        .with_body(body)
}

fn text(status: u16, content_type: &str, body: String) -> Response {
    Response::new(status)
        .with_header("Content-Type", content_type)
        .with_header("Content-Length", &body.len().to_string())
        .with_body(body)
}

/// Whether this node should get traffic: it accepts logins and, in
/// cluster mode, its own heartbeat came back through Redis lately (it can
/// deliver to the other nodes).
pub fn ready(shared: &Shared) -> Result<(), &'static str> {
    if shared.hub.is_shutting_down() {
        return Err("shutting down");
    }
    match shared.hub.cluster() {
        Some(c) if !c.heartbeat_ok() => Err("redis: own heartbeat not seen through the stream"),
        _ => Ok(()),
    }
}

/// Bind the admin port if asked and serve it on its own thread.
pub fn start(args: &AdminArgs, shared: &Arc<Shared>) -> crate::error::Result<()> {
    let Some(addr) = args.admin_listen else {
        return Ok(());
    };
    let listener =
        TcpListener::bind(addr).map_err(|source| crate::error::Error::Bind { addr, source })?;
    let local = listener.local_addr()?;
    info!(admin = ?local.to_string(), "admin port: /livez /readyz /metrics /users");
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => serve(s, &shared),
                    Err(e) => {
                        warn!(error = %e, "admin accept failed");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(())
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let Ok((request, _)) = read_request(&mut stream, &wsproto::Config::default()) else {
        return;
    };
    let response = match request.path() {
        "/livez" => text(200, "text/plain", "ok\n".into()),
        "/readyz" => match ready(shared) {
            Ok(()) => text(200, "text/plain", "ready\n".into()),
            Err(why) => text(503, "text/plain", format!("not ready: {why}\n")),
        },
        "/metrics" => {
            let m = crate::metrics::get();
            m.connections.set(shared.hub.len() as i64);
            m.online.set(shared.hub.online() as i64);
            text(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                m.encode(),
            )
        }
        "/users" => json(200, users_json(shared)),
        _ => text(404, "text/plain", "not found\n".into()),
    };
    let _ = response.write_to(&mut stream);
}
