//! Key rings: the secrets a domain's webhooks may be signed with, for rotation.

use std::fmt;

use chrono::{DateTime, Utc};
use hmac::Mac;

use crate::secret::Secret;
use crate::signature::{HmacSha256, Signature, feed, keyed};

/// One secret of a [`KeyRing`], with the instant after which it is no longer accepted.
#[derive(Clone)]
pub struct Key {
    keyed: HmacSha256,
    expires_at: Option<DateTime<Utc>>,
}

impl Key {
    /// A key accepted until `expires_at` (exclusive), or forever when `None`.
    pub fn new(secret: Secret, expires_at: Option<DateTime<Utc>>) -> Self {
        Self {
            keyed: keyed(&secret),
            expires_at,
        }
    }

    /// Whether the key is accepted at `now`.
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }

    /// When the key stops being accepted, if ever.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// Whether this key, expired or not, signed the concatenation of `parts` as
    /// `signature` (compared in constant time): for the diagnosis of a refusal.
    #[cfg(feature = "axum")]
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) fn signed(&self, parts: &[&[u8]], signature: &Signature) -> bool {
        let mut mac = self.keyed.clone();
        feed(&mut mac, parts);
        mac.verify_slice(signature.as_bytes()).is_ok()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The secrets a domain's webhooks may be signed with, tried in order.
///
/// Rotating a secret without dropping webhooks: add the new secret to the ring, switch
/// Powens to it, then give the old one an expiry (or remove it) once Powens signs with
/// the new one only.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

/// The outcome of checking a signature against a [`KeyRing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMatch {
    /// The key at this index (in ring order) produced the signature.
    Matched(usize),
    /// Some keys were usable, none produced the signature.
    NoMatch,
    /// Every key has expired.
    AllExpired,
}

impl KeyRing {
    /// A ring holding one key that never expires.
    pub fn new(secret: Secret) -> Self {
        Self {
            keys: vec![Key::new(secret, None)],
        }
    }

    /// A ring of the given keys, or `None` when `keys` is empty.
    pub fn from_keys(keys: Vec<Key>) -> Option<Self> {
        (!keys.is_empty()).then_some(Self { keys })
    }

    /// Adds a key, tried after those already in the ring.
    #[must_use]
    pub fn with_key(mut self, secret: Secret, expires_at: Option<DateTime<Utc>>) -> Self {
        self.keys.push(Key::new(secret, expires_at));
        self
    }

    /// The keys, in the order they are tried.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Which usable key, if any, signed the concatenation of `parts` as `signature`.
    ///
    /// Each comparison is constant-time. The time taken does reveal how many keys were
    /// tried, which tells an attacker nothing about any key.
    pub fn find(&self, parts: &[&[u8]], signature: &Signature, now: DateTime<Utc>) -> KeyMatch {
        let mut any_usable = false;
        for (index, key) in self.keys.iter().enumerate() {
            if !key.is_usable_at(now) {
                continue;
            }
            any_usable = true;
            let mut mac = key.keyed.clone();
            feed(&mut mac, parts);
            if mac.verify_slice(signature.as_bytes()).is_ok() {
                return KeyMatch::Matched(index);
            }
        }
        if any_usable {
            KeyMatch::NoMatch
        } else {
            KeyMatch::AllExpired
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::sign_parts;
    use chrono::TimeZone;

    #[test]
    fn key_ring_rotation_and_expiry() {
        let old = Secret::new("old").unwrap();
        let new = Secret::new("new").unwrap();
        let noon = Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap();
        let ring = KeyRing::new(new.clone()).with_key(old.clone(), Some(noon));
        let parts: [&[u8]; 1] = [b"POST./x.d.body"];
        let by_old = sign_parts(&old, &parts);
        let by_new = sign_parts(&new, &parts);
        let before = noon - chrono::TimeDelta::seconds(1);
        assert_eq!(ring.find(&parts, &by_new, before), KeyMatch::Matched(0));
        assert_eq!(ring.find(&parts, &by_old, before), KeyMatch::Matched(1));
        assert_eq!(ring.find(&parts, &by_old, noon), KeyMatch::NoMatch);
        let expired = KeyRing::from_keys(vec![Key::new(old, Some(noon))]).unwrap();
        assert_eq!(expired.find(&parts, &by_old, noon), KeyMatch::AllExpired);
        assert!(KeyRing::from_keys(vec![]).is_none());
    }
}
