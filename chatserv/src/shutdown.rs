//! Ctrl-C / SIGTERM handling.
//!
//! The first SIGINT or SIGTERM sets the stop flag and wakes the accept loop
//! (blocked in `accept`) by connecting to the listening socket; the server
//! then closes every client with 1001 and exits 0. A second signal while
//! that is under way exits at once with status 1, for an operator who does
//! not want to wait.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use signal_hook::iterator::Signals;
use tracing::info;

use crate::error::{Error, Result};

/// Installed signal handlers; [`Shutdown::watch`] starts acting on them.
pub struct Shutdown {
    stop: Arc<AtomicBool>,
    signals: Signals,
}

impl Shutdown {
    /// Install the handlers. Signals that arrive before [`Shutdown::watch`]
    /// are kept and acted on then.
    pub fn install() -> Result<Shutdown> {
        let stop = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Runs in the handler itself, before the watcher thread sets
            // the flag: only a second signal finds it already true.
            flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
                .map_err(Error::Signals)?;
        }
        let signals = Signals::new([SIGINT, SIGTERM]).map_err(Error::Signals)?;
        Ok(Shutdown { stop, signals })
    }

    /// The flag the accept loop checks after every `accept`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Start a thread that, on the first signal, sets the flag and connects
    /// to `listening` so that a blocked `accept` returns.
    pub fn watch(mut self, listening: SocketAddr) -> Result<()> {
        let wake = wake_address(listening);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(signal) = self.signals.forever().next() {
                    info!(signal, "shutdown requested");
                    self.stop.store(true, Ordering::Release);
                    let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
                }
            })
            .map_err(Error::Signals)?;
        Ok(())
    }
}

/// Where to connect to reach a listener bound to `addr`: a wildcard
/// address is reached through loopback.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_woken_through_loopback() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(wake_address(a("0.0.0.0:80")), a("127.0.0.1:80"));
        assert_eq!(wake_address(a("[::]:80")), a("[::1]:80"));
        assert_eq!(wake_address(a("10.1.2.3:80")), a("10.1.2.3:80"));
    }
}
