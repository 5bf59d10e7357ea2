//! The wait between reconnection attempts.

use std::time::Duration;

/// The first wait before reconnecting.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Waits between reconnection attempts: 50 ms, doubling up to a cap, each wait drawn
/// between half and all of it (jitter, so that many clients do not reconnect in step).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    delay: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff capped at `max`.
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            delay: FIRST_RETRY_DELAY.min(max),
            max,
        }
    }

    /// The next wait.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = jittered(self.delay);
        self.delay = self.delay.saturating_mul(2).min(self.max);
        wait
    }
}

/// A wait drawn uniformly between half of `delay` and all of it.
fn jittered(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let delay = Duration::from_millis(800);
        let waits: Vec<_> = (0..1000).map(|_| jittered(delay)).collect();
        assert!(waits.iter().all(|w| *w >= delay / 2 && *w <= delay));
        // Spread, not a constant: some in each half of the range.
        assert!(waits.iter().any(|w| *w < delay * 3 / 4));
        assert!(waits.iter().any(|w| *w > delay * 3 / 4));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(400));
        let caps: Vec<_> = (0..6)
            .map(|_| backoff.next_wait())
            .zip([50, 100, 200, 400, 400, 400])
            .collect();
        for (wait, cap) in caps {
            let cap = Duration::from_millis(cap);
            assert!(wait >= cap / 2 && wait <= cap, "{wait:?} vs {cap:?}");
        }
    }
}
