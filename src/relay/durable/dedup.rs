//! Which webhooks were accepted lately, by `(domain, id_webhook_data)`: a webhook seen
//! again within the retention is a duplicate (Powens sends again one whose 2xx it did
//! not see).
//!
//! Held in memory, at most [`CAPACITY`] webhooks (about 10 MB), the oldest forgotten
//! first: the window is `journal_retention_secs` or the last `CAPACITY` webhooks,
//! whichever is shorter. At start-up it is filled from the journal's entries of the
//! window; a webhook published straight to the broker (`fallback`, the broker up) is
//! remembered from its acceptance on, and forgotten by a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;

use crate::relay::journal::{JournalError, Reader};

/// Most webhooks remembered.
pub(crate) const CAPACITY: usize = 256 * 1024;

/// The webhooks accepted lately.
#[derive(Debug)]
pub(crate) struct Dedup {
    window: i64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each domain once, as a number: a key is then 12 bytes.
    domains: HashMap<String, u32>,
    /// When each key was last accepted (Unix seconds).
    accepted: HashMap<(u32, u64), i64>,
    /// Keys in acceptance order, for forgetting the oldest.
    order: VecDeque<(i64, u32, u64)>,
}

impl Inner {
    fn domain(&mut self, domain: &str) -> u32 {
        if let Some(&n) = self.domains.get(domain) {
            return n;
        }
        let n = u32::try_from(self.domains.len()).unwrap_or(u32::MAX);
        self.domains.insert(domain.to_owned(), n);
        n
    }

    fn remember(&mut self, domain: &str, id: u64, at: i64, window: i64) {
        let key = (self.domain(domain), id);
        self.accepted.insert(key, at);
        self.order.push_back((at, key.0, key.1));
        while let Some(&(oldest, d, i)) = self.order.front() {
            if self.order.len() <= CAPACITY && oldest >= at.saturating_sub(window) {
                break;
            }
            self.order.pop_front();
            // A key accepted again since stays, with its newer time.
            if self.accepted.get(&(d, i)) == Some(&oldest) {
                self.accepted.remove(&(d, i));
            }
        }
    }
}

impl Dedup {
    /// Empty, remembering webhooks for `retention`.
    pub(crate) fn new(retention: Duration) -> Self {
        Self {
            window: i64::try_from(retention.as_secs()).unwrap_or(i64::MAX),
            inner: Mutex::default(),
        }
    }

    /// Filled with the webhooks the journal accepted within `retention`.
    ///
    /// # Errors
    /// The journal's read error.
    pub(crate) async fn warm(reader: &Reader, retention: Duration) -> Result<Self, JournalError> {
        let dedup = Self::new(retention);
        let since = chrono::TimeDelta::from_std(retention)
            .ok()
            .and_then(|window| Utc::now().checked_sub_signed(window))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        let now = Utc::now().timestamp();
        let recent_ids = reader.recent_ids(since).await?;
        let mut inner = dedup.inner();
        for recent in recent_ids {
            if let Ok(id) = u64::try_from(recent.id_webhook_data) {
                inner.remember(&recent.routing_key, id, now, dedup.window);
            }
        }
        drop(inner);
        Ok(dedup)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `(domain, id)` was accepted within the window.
    pub(crate) fn seen(&self, domain: &str, id: u64) -> bool {
        let inner = self.inner();
        let Some(&d) = inner.domains.get(domain) else {
            return false;
        };
        let oldest = Utc::now().timestamp().saturating_sub(self.window);
        inner.accepted.get(&(d, id)).is_some_and(|&at| at >= oldest)
    }

    /// `(domain, id)` was accepted now.
    pub(crate) fn remember(&self, domain: &str, id: u64) {
        let now = Utc::now().timestamp();
        self.inner().remember(domain, id, now, self.window);
    }

    /// How many webhooks it remembers.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner().accepted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_a_duplicate_of_its_domain_only_and_within_the_window() {
        let dedup = Dedup::new(Duration::from_secs(60));
        assert!(!dedup.seen("a.biapi.pro", 1));
        dedup.remember("a.biapi.pro", 1);
        assert!(dedup.seen("a.biapi.pro", 1));
        assert!(!dedup.seen("b.biapi.pro", 1), "another domain's id 1");
        assert!(!dedup.seen("a.biapi.pro", 2));

        let mut inner = Inner::default();
        inner.remember("a.biapi.pro", 7, 1_000, 60);
        inner.remember("a.biapi.pro", 8, 1_061, 60);
        assert!(
            !inner.accepted.contains_key(&(0, 7)),
            "older than the window"
        );
        assert!(inner.accepted.contains_key(&(0, 8)));
    }

    #[test]
    fn the_oldest_are_forgotten_past_the_capacity_and_a_renewed_key_stays() {
        let mut inner = Inner::default();
        inner.remember("a.biapi.pro", 0, 0, i64::MAX);
        for id in 1..=CAPACITY as u64 {
            inner.remember("a.biapi.pro", id, 1, i64::MAX);
        }
        assert_eq!(inner.accepted.len(), CAPACITY);
        assert!(!inner.accepted.contains_key(&(0, 0)), "the oldest went");
        // Key 1, accepted again, outlives its first acceptance's turn to go.
        inner.remember("a.biapi.pro", 1, 2, i64::MAX);
        inner.remember("a.biapi.pro", u64::MAX, 2, i64::MAX);
        assert!(inner.accepted.contains_key(&(0, 1)));
        let dedup = Dedup::new(Duration::from_secs(60));
        dedup.remember("a.biapi.pro", 5);
        assert_eq!(dedup.len(), 1);
    }
}
