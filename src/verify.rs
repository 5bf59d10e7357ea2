//! Verification: a key ring, a domain to name in errors, and a freshness window.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};

use crate::domain::Domain;
use crate::header_error::HeaderError;
use crate::headers::HmacHeaders;
use crate::keyring::{KeyMatch, KeyRing};
use crate::message::PowensWebhookMessage;
use crate::signature::{Signature, SignedPrefix};

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

    /// How far `date` is behind `now`, in nanoseconds (negative: ahead), saturated.
    #[cfg(feature = "axum")]
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) fn behind_nanos(date: DateTime<FixedOffset>, now: DateTime<Utc>) -> i128 {
        epoch_nanos(&now)
            .checked_sub(epoch_nanos(&date))
            .unwrap_or(i128::MAX)
    }

    /// The oldest and the furthest ahead a date may be, in whole seconds.
    #[cfg(feature = "axum")]
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) fn bounds_secs(&self) -> (i64, i64) {
        (whole_secs(self.max_age), whole_secs(self.max_future))
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

    /// The freshness window, if dates are checked.
    #[cfg(feature = "axum")]
    #[cfg_attr(not(feature = "relay"), allow(dead_code))]
    pub(crate) fn freshness(&self) -> Option<FreshnessWindow> {
        self.freshness
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

    /// Verifies a request as received, against the system clock: `method`, the `path`
    /// Powens called (behind a path-stripping proxy, with its prefix put back), the
    /// `headers` and the raw `body`. Returns the index of the key that matched. An
    /// unsigned request (no HMAC headers, or a bearer token only) is refused.
    ///
    /// ```
    /// use powens_webhooks::http::HeaderMap;
    /// use powens_webhooks::{KeyRing, Secret, Verifier, VerifyError};
    ///
    /// let verifier = Verifier::new(KeyRing::new(Secret::new("secret_key")?));
    /// let unsigned = verifier.verify_headers("POST", "/hook", &HeaderMap::new(), b"{}");
    /// assert_eq!(unsigned, Err(VerifyError::UnsignedRequest));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`VerifyError::UnsignedRequest`], [`VerifyError::MalformedHeaders`], or as
    /// [`Verifier::verify`].
    pub fn verify_headers(
        &self,
        method: &str,
        path: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<usize, VerifyError> {
        let parsed = match crate::headers::PowensHeaders::from_header_map(headers) {
            Ok(parsed) => parsed,
            Err(HeaderError::NoAuthentication) => return Err(VerifyError::UnsignedRequest),
            Err(e) => return Err(VerifyError::MalformedHeaders(e)),
        };
        let hmac = parsed.hmac().ok_or(VerifyError::UnsignedRequest)?;
        self.verify(method, path, hmac, body, Utc::now())
    }

    /// [`verify_headers`](Self::verify_headers) on an `http::Request` whose body is the
    /// raw bytes received.
    ///
    /// # Errors
    /// As [`verify_headers`](Self::verify_headers).
    pub fn verify_request<B: AsRef<[u8]>>(
        &self,
        request: &http::Request<B>,
    ) -> Result<usize, VerifyError> {
        self.verify_headers(
            request.method().as_str(),
            request.uri().path(),
            request.headers(),
            request.body().as_ref(),
        )
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
    MalformedSignature(#[source] HeaderError),
    /// A request has no `BI-Signature` and `BI-Signature-Date` headers (a bearer token
    /// alone proves nothing to a receiver holding the HMAC secret).
    #[error("the request has no BI-Signature and BI-Signature-Date headers")]
    UnsignedRequest,
    /// A request's signature headers are malformed.
    #[error(transparent)]
    MalformedHeaders(HeaderError),
}

// A consumer's check of a message's signature lives here, with the verifier, so that
// the wire types in `message` depend on nothing above them.
impl PowensWebhookMessage {
    /// Checks the signature the message carries: `HMAC(key, payload_prefix + payload)`,
    /// for a consumer holding the domain's secrets. The date is not checked against the
    /// clock (a message may wait in a queue); `now` only decides which keys have expired.
    ///
    /// # Errors
    /// [`VerifyError::Unsigned`], [`VerifyError::MalformedSignature`],
    /// [`VerifyError::SignatureMismatch`] or [`VerifyError::AllKeysExpired`].
    pub fn verify(&self, verifier: &Verifier, now: DateTime<Utc>) -> Result<usize, VerifyError> {
        let hmac = self.hmac_signature.as_ref().ok_or(VerifyError::Unsigned)?;
        let signature =
            Signature::from_base64(&hmac.signature).map_err(VerifyError::MalformedSignature)?;
        verifier.verify_parts(
            &[hmac.payload_prefix.as_bytes(), self.payload.as_bytes()],
            &signature,
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn freshness_bounds_are_inclusive_and_extremes_do_not_panic() {
        let window = FreshnessWindow::new(Duration::from_secs(300), Duration::from_secs(60));
        let now = at(2024, 1, 1, 12, 0, 0);
        let fixed = |d: DateTime<Utc>| d.fixed_offset();
        let stale = VerifyError::Stale {
            age_secs: 301,
            max_age_secs: 300,
        };
        let ahead = VerifyError::FromTheFuture {
            ahead_secs: 61,
            max_future_secs: 60,
        };
        let cases = [
            (at(2024, 1, 1, 11, 55, 0), Ok(())),
            (at(2024, 1, 1, 11, 54, 59), Err(stale)),
            (at(2024, 1, 1, 12, 1, 0), Ok(())),
            (at(2024, 1, 1, 12, 1, 1), Err(ahead)),
        ];
        for (date, expected) in cases {
            assert_eq!(window.check(fixed(date), now), expected, "{date}");
        }
        for extreme in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            assert!(window.check(fixed(extreme), now).is_err());
            assert!(window.check(fixed(extreme), extreme).is_ok());
            let huge = FreshnessWindow::new(Duration::MAX, Duration::MAX);
            assert!(huge.check(fixed(extreme), now).is_ok());
            assert!(huge.check(fixed(now), extreme).is_ok());
        }
    }
}
