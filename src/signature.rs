//! The `BI-Signature` HMAC: the signed prefix, signing, and verification against a key
//! ring within a freshness window.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, FixedOffset, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::Domain;
use crate::headers::{HeaderError, HmacHeaders};
use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Longest base64 text [`Signature::from_base64`] decodes; 32 bytes take 44 characters.
const MAX_SIGNATURE_TEXT: usize = 64;

/// An HMAC-SHA256 signature: exactly 32 bytes. Its `Debug` does not show them.
///
/// Equality (`==`) is for tests and bookkeeping; verification never uses it but compares
/// in constant time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; Signature::LEN]);

impl Signature {
    /// Length of an HMAC-SHA256 output in bytes.
    pub const LEN: usize = 32;

    /// Decodes a `BI-Signature` value: standard base64 with padding, no whitespace, no
    /// stray bits, exactly 32 bytes.
    ///
    /// # Errors
    /// [`HeaderError::SignatureNotBase64`] or [`HeaderError::SignatureWrongLength`].
    pub fn from_base64(text: &str) -> Result<Self, HeaderError> {
        let mut buf = [0_u8; MAX_SIGNATURE_TEXT / 4 * 3];
        if text.len() > MAX_SIGNATURE_TEXT {
            // Too long to be 32 bytes whatever it holds; say how long it would be.
            return Err(HeaderError::SignatureWrongLength {
                len: text.len() / 4 * 3,
            });
        }
        let len = STANDARD
            .decode_slice(text, &mut buf)
            .map_err(|_| HeaderError::SignatureNotBase64)?;
        let bytes: [u8; Self::LEN] = buf
            .get(..len)
            .and_then(|b| b.try_into().ok())
            .ok_or(HeaderError::SignatureWrongLength { len })?;
        Ok(Self(bytes))
    }

    /// A signature from its raw bytes.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// Standard, padded base64: the `BI-Signature` header value.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(..)")
    }
}

/// What Powens signs before the body: `METHOD.ENDPOINT.DATE.`.
///
/// `endpoint` is the request path as Powens addressed it (no scheme, host or query) and
/// `date` the raw `BI-Signature-Date` text. The parts are fed to the HMAC one by one, so
/// signing and verifying never copy the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedPrefix<'a> {
    method: &'a str,
    endpoint: &'a str,
    date: &'a str,
}

impl<'a> SignedPrefix<'a> {
    /// The prefix for `method` (upper case, e.g. `POST`), `endpoint` and raw `date`.
    pub fn new(method: &'a str, endpoint: &'a str, date: &'a str) -> Self {
        Self {
            method,
            endpoint,
            date,
        }
    }

    /// The prefix's bytes in order, without concatenating them.
    pub fn parts(&self) -> [&'a [u8]; 6] {
        [
            self.method.as_bytes(),
            b".",
            self.endpoint.as_bytes(),
            b".",
            self.date.as_bytes(),
            b".",
        ]
    }

    /// The prefix as one string, TeaL's `payload_prefix`.
    pub fn to_payload_prefix(&self) -> String {
        format!("{}.{}.{}.", self.method, self.endpoint, self.date)
    }
}

/// The HMAC state after absorbing `secret`: cloned for each MAC instead of re-deriving
/// the padded key (two SHA-256 blocks) every time. It is key material: the `zeroize`
/// features of `hmac` and `sha2` wipe it on drop.
fn keyed(secret: &Secret) -> HmacSha256 {
    // HMAC takes keys of any length; the error branch cannot happen.
    <HmacSha256 as KeyInit>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"))
}

/// Feeds the concatenation of `parts` to `mac`.
fn feed(mac: &mut HmacSha256, parts: &[&[u8]]) {
    for part in parts {
        mac.update(part);
    }
}

/// Signs `prefix` then `body` with `secret`, as Powens does.
///
/// ```
/// use powens_webhooks::{Secret, SignedPrefix, sign};
///
/// let secret = Secret::new("secret_key")?;
/// let prefix = SignedPrefix::new("POST", "/v1/webhook-listener", "2022-06-27T11:08:52.577831Z");
/// let signature = sign(&secret, &prefix, br#"{"id": 1, "state": "done"}"#);
/// assert_eq!(signature.to_base64(), "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo=");
/// # Ok::<(), powens_webhooks::SecretError>(())
/// ```
pub fn sign(secret: &Secret, prefix: &SignedPrefix<'_>, body: &[u8]) -> Signature {
    let [a, b, c, d, e, f] = prefix.parts();
    sign_parts(secret, &[a, b, c, d, e, f, body])
}

/// Signs the concatenation of `parts` with `secret`.
pub fn sign_parts(secret: &Secret, parts: &[&[u8]]) -> Signature {
    let mut mac = keyed(secret);
    feed(&mut mac, parts);
    Signature(mac.finalize().into_bytes().into())
}

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
            if mac.verify_slice(&signature.0).is_ok() {
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

/// How old, and how far in the future, a `BI-Signature-Date` may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessWindow {
    /// In nanoseconds: an `i128` holds every `Duration` and every difference of two
    /// dates, so the check needs no saturation and cannot wrap.
    max_age: i128,
    max_future: i128,
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Nanoseconds since the Unix epoch: exact for every date chrono can hold.
fn epoch_nanos<Tz: chrono::TimeZone>(at: &DateTime<Tz>) -> i128 {
    i128::from(at.timestamp()) * NANOS_PER_SEC + i128::from(at.timestamp_subsec_nanos())
}

/// Whole seconds of `nanos`, saturated to the `i64` range for error messages.
fn whole_secs(nanos: i128) -> i64 {
    i64::try_from(nanos / NANOS_PER_SEC).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

impl FreshnessWindow {
    /// A window accepting dates at most `max_age` before and `max_future` after the clock.
    pub fn new(max_age: Duration, max_future: Duration) -> Self {
        // A Duration has at most u64::MAX seconds: its nanoseconds fit an i128.
        let nanos = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
        Self {
            max_age: nanos(max_age),
            max_future: nanos(max_future),
        }
    }

    /// Checks `date` against `now`; both bounds are inclusive.
    ///
    /// The arithmetic is on `i128` nanoseconds, wide enough for any two dates and any
    /// window (checked all the same): no input date, however extreme, panics or wraps.
    ///
    /// # Errors
    /// [`VerifyError::Stale`] or [`VerifyError::FromTheFuture`].
    pub fn check(
        &self,
        date: DateTime<FixedOffset>,
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        let age = epoch_nanos(&now)
            .checked_sub(epoch_nanos(&date))
            .unwrap_or(i128::MAX);
        if age > self.max_age {
            return Err(VerifyError::Stale {
                age_secs: whole_secs(age),
                max_age_secs: whole_secs(self.max_age),
            });
        }
        let ahead = age.checked_neg().unwrap_or(i128::MAX);
        if ahead > self.max_future {
            return Err(VerifyError::FromTheFuture {
                ahead_secs: whole_secs(ahead),
                max_future_secs: whole_secs(self.max_future),
            });
        }
        Ok(())
    }
}

impl Default for FreshnessWindow {
    /// 15 minutes old, 2 minutes ahead: room for queueing at Powens and for clock skew,
    /// while bounding how long a captured request can be replayed.
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), Duration::from_secs(2 * 60))
    }
}

/// Verifies Powens webhook signatures for one domain: a key ring and, optionally, a
/// freshness window.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use powens_webhooks::{
///     FreshnessWindow, HmacHeaders, KeyRing, Secret, Signature, SignatureDate, Verifier,
/// };
///
/// let verifier = Verifier::new(KeyRing::new(Secret::new("secret_key")?))
///     .for_domain("budgea.biapi.pro".parse()?)
///     .with_freshness(FreshnessWindow::default());
/// let hmac = HmacHeaders {
///     signature: Signature::from_base64("GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo=")?,
///     date: SignatureDate::parse("2022-06-27T11:08:52.577831Z")?,
/// };
/// let now = Utc.with_ymd_and_hms(2022, 6, 27, 11, 9, 0).unwrap();
/// let body = br#"{"id": 1, "state": "done"}"#;
/// verifier.verify("POST", "/v1/webhook-listener", &hmac, body, now)?;
///
/// let err = verifier.verify("POST", "/v1/webhook-listener", &hmac, b"{}", now).unwrap_err();
/// assert_eq!(err.to_string(), "signature does not match any key for budgea.biapi.pro");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeyRing,
    domain: Option<Domain>,
    freshness: Option<FreshnessWindow>,
}

impl Verifier {
    /// A verifier using `keys`, with no freshness check.
    pub fn new(keys: KeyRing) -> Self {
        Self {
            keys,
            domain: None,
            freshness: None,
        }
    }

    /// Names the domain in error messages.
    #[must_use]
    pub fn for_domain(mut self, domain: Domain) -> Self {
        self.domain = Some(domain);
        self
    }

    /// Checks `BI-Signature-Date` against the clock with `window`.
    #[must_use]
    pub fn with_freshness(mut self, window: FreshnessWindow) -> Self {
        self.freshness = Some(window);
        self
    }

    /// The key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Verifies a request: the date's freshness at `now` (if a window is set), then the
    /// HMAC over `METHOD.ENDPOINT.DATE.` and the raw `body`. Returns the index of the key
    /// that matched.
    ///
    /// Allocates nothing on success, whatever the body's size.
    ///
    /// # Errors
    /// [`VerifyError::Stale`], [`VerifyError::FromTheFuture`],
    /// [`VerifyError::SignatureMismatch`] or [`VerifyError::AllKeysExpired`].
    pub fn verify(
        &self,
        method: &str,
        endpoint: &str,
        hmac: &HmacHeaders,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<usize, VerifyError> {
        if let Some(window) = &self.freshness {
            window.check(hmac.date.at(), now)?;
        }
        let [a, b, c, d, e, f] = SignedPrefix::new(method, endpoint, hmac.date.raw()).parts();
        self.verify_parts(&[a, b, c, d, e, f, body], &hmac.signature, now)
    }

    /// Verifies that `signature` is the HMAC of the concatenation of `parts`, with no
    /// freshness check. Returns the index of the key that matched.
    ///
    /// # Errors
    /// [`VerifyError::SignatureMismatch`] or [`VerifyError::AllKeysExpired`].
    pub fn verify_parts(
        &self,
        parts: &[&[u8]],
        signature: &Signature,
        now: DateTime<Utc>,
    ) -> Result<usize, VerifyError> {
        match self.keys.find(parts, signature, now) {
            KeyMatch::Matched(index) => Ok(index),
            KeyMatch::NoMatch => Err(VerifyError::SignatureMismatch {
                domain: self.domain.clone(),
            }),
            KeyMatch::AllExpired => Err(VerifyError::AllKeysExpired {
                domain: self.domain.clone(),
            }),
        }
    }
}

fn for_domain(domain: &Option<Domain>) -> String {
    domain
        .as_ref()
        .map_or_else(String::new, |d| format!(" for {d}"))
}

/// Why a webhook failed verification. No variant holds a secret or signature byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature date is older than the freshness window allows.
    #[error(
        "BI-Signature-Date is {age_secs} s old, more than the {max_age_secs} s allowed (replayed request, or a clock is wrong)"
    )]
    Stale {
        /// How old the date is, in seconds.
        age_secs: i64,
        /// The most the window allows.
        max_age_secs: i64,
    },
    /// The signature date is further ahead of the clock than allowed.
    #[error(
        "BI-Signature-Date is {ahead_secs} s in the future, more than the {max_future_secs} s allowed (a clock is wrong)"
    )]
    FromTheFuture {
        /// How far ahead the date is, in seconds.
        ahead_secs: i64,
        /// The most the window allows.
        max_future_secs: i64,
    },
    /// No usable key produced the signature.
    #[error("signature does not match any key{}", for_domain(domain))]
    SignatureMismatch {
        /// The domain whose keys were tried, when the verifier knows it.
        domain: Option<Domain>,
    },
    /// Every key of the ring has expired.
    #[error(
        "every webhook secret{} has expired; configure a current one",
        for_domain(domain)
    )]
    AllKeysExpired {
        /// The domain whose keys were tried, when the verifier knows it.
        domain: Option<Domain>,
    },
    /// A message carries no HMAC signature to verify.
    #[error("the message carries no HMAC signature (it was relayed with a bearer token only)")]
    Unsigned,
    /// A message's signature field is not a valid signature.
    #[error("the message's signature is malformed: {0}")]
    MalformedSignature(HeaderError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn docs_example() {
        let prefix = SignedPrefix::new(
            "POST",
            "/v1/webhook-listener",
            "2022-06-27T11:08:52.577831Z",
        );
        assert_eq!(
            prefix.to_payload_prefix(),
            "POST./v1/webhook-listener.2022-06-27T11:08:52.577831Z."
        );
        let sig = sign(
            &Secret::new("secret_key").unwrap(),
            &prefix,
            br#"{"id": 1, "state": "done"}"#,
        );
        assert_eq!(
            sig.to_base64(),
            "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo="
        );
    }

    #[test]
    fn signature_text() {
        let good = "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo=";
        assert_eq!(Signature::from_base64(good).unwrap().to_base64(), good);
        // 31 and 33 bytes.
        assert_eq!(
            Signature::from_base64(&STANDARD.encode([7_u8; 31])),
            Err(HeaderError::SignatureWrongLength { len: 31 })
        );
        assert_eq!(
            Signature::from_base64(&STANDARD.encode([7_u8; 33])),
            Err(HeaderError::SignatureWrongLength { len: 33 })
        );
        // Stray bits in the last character, whitespace, URL-safe alphabet, missing padding.
        for bad in [
            "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbp=",
            " GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo=",
            "GVtud1v5GUAqTGvCgbxdjk-_-KTNLYKdQe4j88dxTbo=",
            "GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo",
        ] {
            assert_eq!(
                Signature::from_base64(bad),
                Err(HeaderError::SignatureNotBase64),
                "{bad}"
            );
        }
        assert!(matches!(
            Signature::from_base64(&"A".repeat(4096)),
            Err(HeaderError::SignatureWrongLength { .. })
        ));
        assert_eq!(
            format!("{:?}", Signature::from_base64(good).unwrap()),
            "Signature(..)"
        );
    }

    #[test]
    fn key_ring_rotation_and_expiry() {
        let old = Secret::new("old").unwrap();
        let new = Secret::new("new").unwrap();
        let noon = at(2024, 1, 1, 12, 0, 0);
        let ring = KeyRing::new(new.clone()).with_key(old.clone(), Some(noon));
        let parts: [&[u8]; 1] = [b"POST./x.d.body"];
        let by_old = sign_parts(&old, &parts);
        let by_new = sign_parts(&new, &parts);
        let before = at(2024, 1, 1, 11, 59, 59);
        assert_eq!(ring.find(&parts, &by_new, before), KeyMatch::Matched(0));
        assert_eq!(ring.find(&parts, &by_old, before), KeyMatch::Matched(1));
        assert_eq!(ring.find(&parts, &by_old, noon), KeyMatch::NoMatch);
        let expired = KeyRing::from_keys(vec![Key::new(old, Some(noon))]).unwrap();
        assert_eq!(expired.find(&parts, &by_old, noon), KeyMatch::AllExpired);
        assert!(KeyRing::from_keys(vec![]).is_none());
    }

    #[test]
    fn freshness_bounds_are_inclusive_and_extremes_do_not_panic() {
        let window = FreshnessWindow::new(Duration::from_secs(300), Duration::from_secs(60));
        let now = at(2024, 1, 1, 12, 0, 0);
        let fixed = |d: DateTime<Utc>| d.fixed_offset();
        assert!(window.check(fixed(at(2024, 1, 1, 11, 55, 0)), now).is_ok());
        assert_eq!(
            window.check(fixed(at(2024, 1, 1, 11, 54, 59)), now),
            Err(VerifyError::Stale {
                age_secs: 301,
                max_age_secs: 300
            })
        );
        assert!(window.check(fixed(at(2024, 1, 1, 12, 1, 0)), now).is_ok());
        assert_eq!(
            window.check(fixed(at(2024, 1, 1, 12, 1, 1)), now),
            Err(VerifyError::FromTheFuture {
                ahead_secs: 61,
                max_future_secs: 60
            })
        );
        for extreme in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            assert!(window.check(fixed(extreme), now).is_err());
            assert!(window.check(fixed(extreme), extreme).is_ok());
            let huge = FreshnessWindow::new(Duration::MAX, Duration::MAX);
            assert!(huge.check(fixed(extreme), now).is_ok());
            assert!(huge.check(fixed(now), extreme).is_ok());
        }
    }
}
