//! Exponential back-off with jitter between reconnection attempts.

use std::time::Duration;

use rand::Rng;

/// First pause after a failure.
const FIRST: Duration = Duration::from_millis(100);
/// Longest pause.
const MAX: Duration = Duration::from_secs(5);

/// Doubles from 100 ms up to 5 s; each pause is drawn from [½, 1] of the
/// step ("equal jitter"), so nodes that lost Redis together do not
/// reconnect in lockstep.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The pause before the next attempt, after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let step = FIRST.saturating_mul(1u32 << self.failures.min(10)).min(MAX);
        self.failures = self.failures.saturating_add(1);
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A success: start again from the first step.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_with_jitter_and_caps() {
        let mut b = Backoff::default();
        let d: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= FIRST);
        assert!(d[3] >= Duration::from_millis(400) && d[3] <= Duration::from_millis(800));
        assert!(d.iter().all(|d| *d <= MAX));
        assert!(d[11] >= MAX / 2);
        b.reset();
        assert!(b.next_delay() <= FIRST);
    }
}
