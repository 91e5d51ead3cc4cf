//! Flood limits: a token bucket per connection on messages, and a count of
//! connections per client IP.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `--rate-limit`: `N/UNIT`, e.g. `20/s`, `600/m`, `5/500ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Messages allowed per `per`.
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.count, self.per)
    }
}

impl Rate {
    /// Parse `N/UNIT` (`UNIT` a duration, the `1` of `1s` may be left out).
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad =
            |why: String| format!("invalid rate {text:?}: {why} (examples: 20/s, 600/m, 5/500ms)");
        let (count, per) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| bad("expected N/UNIT".into()))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| bad("expected a whole number of messages before `/`".into()))?;
        if count == 0 {
            return Err(bad("the number of messages must be at least 1".into()));
        }
        let per = per.trim();
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            per.to_owned()
        } else {
            format!("1{per}")
        };
        let per = chatcommon::parse_positive_duration(&per).map_err(bad)?;
        Ok(Rate { count, per })
    }

    /// Tokens added per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }
}

/// A token bucket: holds up to `burst` tokens, refilled at `rate`; each
/// message takes one.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate, burst: u32) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            tokens: burst,
            burst,
            per_second: rate.per_second(),
            last: Instant::now(),
        }
    }

    /// Take a token at `now`; false if the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Live connections per client IP.
#[derive(Debug, Default)]
pub struct PerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted for its IP; uncounted on drop.
#[derive(Debug)]
pub struct IpGuard {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// Count a connection from `ip` unless it already has `max`.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpGuard {
            table: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(
            Rate::parse("20/s"),
            Ok(Rate {
                count: 20,
                per: Duration::from_secs(1)
            })
        );
        assert_eq!(Rate::parse("600/m").unwrap().per_second(), 10.0);
        assert_eq!(Rate::parse("5/500ms").unwrap().per_second(), 10.0);
        for bad in ["20", "0/s", "x/s", "20/", "20/x", "20/0s", "-1/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket() {
        let start = Instant::now();
        let mut b = Bucket::new(Rate::parse("10/s").unwrap(), 3);
        b.last = start;
        assert!((0..3).all(|_| b.take(start)));
        assert!(!b.take(start));
        assert!(b.take(start + Duration::from_millis(100)));
        assert!(!b.take(start + Duration::from_millis(150)));
        // Refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| b.take(later)));
        assert!(!b.take(later));
    }

    #[test]
    fn per_ip() {
        let t = Arc::new(PerIp::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = t.acquire(ip, 2).unwrap();
        let _b = t.acquire(ip, 2).unwrap();
        assert!(t.acquire(ip, 2).is_none());
        assert!(t.acquire("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(t.acquire(ip, 2).is_some());
    }
}
