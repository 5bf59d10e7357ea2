//! The search: each likely cause tried in turn, cheapest and likeliest first, within a
//! budget of bytes hashed (a large body makes every HMAC expensive).

use std::io::Write;

use chrono::{DateTime, Utc};

use super::prefixes::candidates;
use super::{Diagnosis, Finding, Skew};
use crate::domain::Domain;
use crate::headers::HmacHeaders;
use crate::keyring::{Key, KeyRing};
use crate::signature::SignedPrefix;
use crate::verify::{FreshnessWindow, Verifier, VerifyError};

/// Most bytes one diagnosis feeds to HMACs: with SHA-NI about 40 ms of CPU, whatever
/// the body's size and the number of keys and prefixes.
const BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Largest body compressed again to check whether it was signed compressed: gzip at
/// its best level costs some 30 ns a byte.
const RECOMPRESS_MAX: usize = 1024 * 1024;
/// Bytes counted for a prefix, a date and the HMAC's own blocks.
const OVERHEAD: usize = 256;

/// A refused webhook request, as received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Suspect<'a> {
    /// The method, upper case.
    pub(crate) method: &'a str,
    /// The path as received (without the prefix put back).
    pub(crate) path: &'a str,
    /// The prefix put back (`public_path_prefix`), maybe empty.
    pub(crate) prefix: &'a str,
    /// Prefixes that may have been stripped (the proxy's headers, the caller's own).
    pub(crate) hints: &'a [String],
    /// The domain the path named.
    pub(crate) domain: &'a Domain,
    /// The signature and its date.
    pub(crate) hmac: &'a HmacHeaders,
    /// The body as received.
    pub(crate) received: &'a [u8],
    /// The body decompressed, when it came with `Content-Encoding: gzip`.
    pub(crate) decoded: Option<&'a [u8]>,
    /// The largest body decompressed.
    pub(crate) limit: usize,
}

/// The secrets to try: the domain's verifier (its ring and freshness window) and the
/// other domains' rings.
#[derive(Debug, Clone)]
pub(crate) struct Rings<'a> {
    /// The path's domain.
    pub(crate) own: &'a Verifier,
    /// The other verify-mode domains.
    pub(crate) others: Vec<(&'a Domain, &'a KeyRing)>,
}

/// HMACs within a budget.
struct Search<'a> {
    suspect: &'a Suspect<'a>,
    left: usize,
    exhausted: bool,
}

impl Search<'_> {
    /// Whether `key` signed `body` for `endpoint`, if the budget allows checking.
    fn signed(&mut self, key: &Key, endpoint: &str, body: &[u8]) -> bool {
        let cost = body
            .len()
            .saturating_add(endpoint.len())
            .saturating_add(OVERHEAD);
        let Some(left) = self.left.checked_sub(cost) else {
            self.exhausted = true;
            return false;
        };
        self.left = left;
        let hmac = self.suspect.hmac;
        let [a, b, c, d, e, f] =
            SignedPrefix::new(self.suspect.method, endpoint, hmac.date.raw()).parts();
        key.signed(&[a, b, c, d, e, f, body], &hmac.signature)
    }

    /// Whether one of `keys` signed one of the bodies as verified for `endpoint`.
    fn any<'k>(&mut self, keys: impl IntoIterator<Item = &'k Key> + Clone, endpoint: &str) -> bool {
        let suspect = self.suspect;
        let bodies = [suspect.decoded, Some(suspect.received)];
        bodies.into_iter().flatten().any(|body| {
            keys.clone()
                .into_iter()
                .any(|key| self.signed(key, endpoint, body))
        })
    }
}

/// Why the signature of `suspect` did not match: `None` unless `refusal` is about the
/// signature or its date (a mismatch, every secret expired, a stale or future date).
pub(crate) fn diagnose(
    suspect: &Suspect<'_>,
    rings: &Rings<'_>,
    refusal: &VerifyError,
    now: DateTime<Utc>,
) -> Option<Diagnosis> {
    let clock = match refusal {
        VerifyError::Stale { .. } | VerifyError::FromTheFuture { .. } => {
            let window = rings.own.freshness().unwrap_or_default();
            let behind = FreshnessWindow::behind_nanos(suspect.hmac.date.at(), now);
            let (max_age_secs, max_ahead_secs) = window.bounds_secs();
            Some(Skew {
                behind_secs: i64::try_from(behind / 1_000_000_000).unwrap_or(if behind < 0 {
                    i64::MIN
                } else {
                    i64::MAX
                }),
                max_age_secs,
                max_ahead_secs,
            })
        }
        VerifyError::SignatureMismatch { .. } | VerifyError::AllKeysExpired { .. } => None,
        _ => return None,
    };
    let mut search = Search {
        suspect,
        left: BUDGET_BYTES,
        exhausted: false,
    };
    let endpoint = format!("{}{}", suspect.prefix, suspect.path);
    let keys = rings.own.keys().keys();
    let usable = || keys.iter().filter(move |k| k.is_usable_at(now));
    // A date refused before the signature was checked: does a current secret sign it?
    let finding = if clock.is_some() && search.any(usable(), &endpoint) {
        None
    } else {
        Some(signature(&mut search, rings, &endpoint, now))
    };
    Some(Diagnosis {
        domain: suspect.domain.clone(),
        clock,
        finding,
    })
}

/// What signed the request, if not a current secret of its domain for its endpoint.
fn signature(
    search: &mut Search<'_>,
    rings: &Rings<'_>,
    endpoint: &str,
    now: DateTime<Utc>,
) -> Finding {
    let keys = rings.own.keys().keys();
    for (position, key) in keys.iter().enumerate() {
        if let Some(expired_at) = key.expires_at().filter(|_| !key.is_usable_at(now))
            && search.any([key], endpoint)
        {
            return Finding::ExpiredSecret {
                position,
                expired_at,
            };
        }
    }
    for (domain, ring) in &rings.others {
        if search.any(ring.keys(), endpoint) {
            return Finding::OtherDomain {
                domain: (*domain).clone(),
            };
        }
    }
    // The variants below are tried with the current secrets (all of them when every
    // one has expired): one mistake at a time.
    let any_usable = keys.iter().any(|k| k.is_usable_at(now));
    let current: Vec<&Key> = keys
        .iter()
        .filter(|k| !any_usable || k.is_usable_at(now))
        .collect();
    let suspect = search.suspect;
    for prefix in candidates(suspect.prefix, suspect.hints) {
        if search.any(
            current.iter().copied(),
            &format!("{prefix}{}", suspect.path),
        ) {
            return Finding::PathPrefix {
                signed: prefix,
                configured: suspect.prefix.to_owned(),
            };
        }
    }
    if let Some(finding) = encoding(search, &current, endpoint) {
        return finding;
    }
    Finding::NoMatch {
        incomplete: search.exhausted,
    }
}

/// A body that arrived in the other encoding than the one signed.
fn encoding(search: &mut Search<'_>, keys: &[&Key], endpoint: &str) -> Option<Finding> {
    let suspect = search.suspect;
    if suspect.decoded.is_some() {
        // Both forms were verified already.
        return None;
    }
    let body = suspect.received;
    if body.starts_with(&[0x1f, 0x8b]) {
        let signed = crate::encoding::gunzip(body, suspect.limit).is_ok_and(|decompressed| {
            keys.iter()
                .any(|k| search.signed(k, endpoint, &decompressed))
        });
        return signed.then_some(Finding::CompressedWithoutHeader);
    }
    if body.len() > RECOMPRESS_MAX {
        search.exhausted = true;
        return None;
    }
    // Compressed again as the sender may have: gzip's usual levels, its header dated
    // never (0) or at the signature's second (what Python's gzip writes).
    let seconds = suspect.hmac.date.at().timestamp();
    let mtimes: Vec<u32> = [
        Some(0),
        u32::try_from(seconds).ok(),
        u32::try_from(seconds.saturating_sub(1)).ok(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for level in [9, 6] {
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::new(level));
        let mut compressed = gz.write_all(body).ok().and_then(|()| gz.finish().ok())?;
        for mtime in &mtimes {
            if let Some(field) = compressed.get_mut(4..8) {
                field.copy_from_slice(&mtime.to_le_bytes());
            }
            if keys.iter().any(|k| search.signed(k, endpoint, &compressed)) {
                return Some(Finding::Decompressed);
            }
        }
    }
    None
}
