//! Parsing of the request headers Powens authenticates a webhook with.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Timelike};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

use crate::signature::Signature;

/// Name of the header carrying the base64 HMAC.
pub const BI_SIGNATURE: &str = "bi-signature";
/// Name of the header carrying the signing date.
pub const BI_SIGNATURE_DATE: &str = "bi-signature-date";

/// Longest `BI-Signature-Date` accepted. The longest RFC 3339 date with nine fraction
/// digits and an offset is 35 bytes.
const MAX_DATE_LEN: usize = 64;
/// Most fraction digits accepted in `BI-Signature-Date` (nanoseconds).
const MAX_FRACTION_DIGITS: usize = 9;

/// The `BI-Signature-Date` header: the date as parsed and the header text byte for byte,
/// because the signature covers the text, not the instant.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureDate {
    raw: String,
    at: DateTime<FixedOffset>,
}

impl SignatureDate {
    /// Parses a `BI-Signature-Date` value: an RFC 3339 (ISO 8601) date and time with a
    /// timezone (`Z` or an offset such as `+02:00`) and 0 to 9 fraction digits, e.g.
    /// `2022-06-27T11:08:52.577831Z`. A leap second (`:60`) is refused.
    ///
    /// # Errors
    /// [`HeaderError::DateWithoutTimezone`], [`HeaderError::DateTooPrecise`] or
    /// [`HeaderError::DateInvalid`].
    pub fn parse(raw: &str) -> Result<Self, HeaderError> {
        if raw.len() > MAX_DATE_LEN || !raw.is_ascii() {
            return Err(HeaderError::DateInvalid);
        }
        if fraction_digits(raw) > MAX_FRACTION_DIGITS {
            return Err(HeaderError::DateTooPrecise);
        }
        match DateTime::parse_from_rfc3339(raw) {
            Ok(at) if at.nanosecond() < 1_000_000_000 => Ok(Self {
                raw: raw.to_owned(),
                at,
            }),
            Ok(_) => Err(HeaderError::DateInvalid),
            Err(_) if NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => {
                Err(HeaderError::DateWithoutTimezone)
            }
            Err(_) => Err(HeaderError::DateInvalid),
        }
    }

    /// The header text exactly as received: this is what is signed.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The instant, with the offset the header gave.
    pub fn at(&self) -> DateTime<FixedOffset> {
        self.at
    }
}

impl fmt::Debug for SignatureDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureDate({:?})", self.raw)
    }
}

/// Counts the digits after the seconds' decimal point (`HH:MM:SS.fff`), 0 if none.
fn fraction_digits(raw: &str) -> usize {
    // The point after the seconds is the first '.' in the string: the date and time
    // fields have none.
    raw.find('.').map_or(0, |dot| {
        raw[dot + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count()
    })
}

/// A bearer token from `Authorization: Bearer <token>`. Its `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Parses the value of an `Authorization` header.
    ///
    /// The scheme is matched without regard to case (RFC 9110); the token must be
    /// non-empty RFC 6750 `token68` text (letters, digits, `-._~+/`, then `=` padding).
    ///
    /// # Errors
    /// [`HeaderError::AuthorizationNotBearer`], [`HeaderError::EmptyBearerToken`] or
    /// [`HeaderError::MalformedBearerToken`].
    pub fn parse_authorization(value: &str) -> Result<Self, HeaderError> {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(HeaderError::AuthorizationNotBearer);
        }
        let token = rest.trim_matches(' ');
        if token.is_empty() {
            return Err(HeaderError::EmptyBearerToken);
        }
        let body = token.trim_end_matches('=');
        let token68 = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if !token68 {
            return Err(HeaderError::MalformedBearerToken);
        }
        Ok(Self(token.to_owned()))
    }

    /// The token text, to forward to consumers (`user_token`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for BearerToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A token read back from a message is taken as it was forwarded: the relay checked its
/// shape when it arrived, and TeaL checked nothing.
impl<'de> serde::Deserialize<'de> for BearerToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([REDACTED])")
    }
}

/// The two HMAC headers, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacHeaders {
    /// `BI-Signature`, decoded.
    pub signature: Signature,
    /// `BI-Signature-Date`.
    pub date: SignatureDate,
}

/// What a webhook request carries to authenticate itself: the HMAC headers, a bearer
/// token, or both. Never neither: that is [`HeaderError::NoAuthentication`], as in TeaL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowensHeaders {
    hmac: Option<HmacHeaders>,
    bearer: Option<BearerToken>,
}

impl PowensHeaders {
    /// Parses `BI-Signature`, `BI-Signature-Date` and `Authorization` from `headers`.
    ///
    /// Each header may appear at most once and must be visible ASCII. The two HMAC headers
    /// come together or not at all.
    ///
    /// # Errors
    /// A [`HeaderError`] naming the first header that is wrong.
    pub fn from_header_map(headers: &HeaderMap) -> Result<Self, HeaderError> {
        // Names as `HeaderName`s: a `&str` would be parsed into one on every lookup.
        const SIGNATURE: HeaderName = HeaderName::from_static(BI_SIGNATURE);
        const DATE: HeaderName = HeaderName::from_static(BI_SIGNATURE_DATE);
        let signature = single(headers, &SIGNATURE, "BI-Signature")?;
        let date = single(headers, &DATE, "BI-Signature-Date")?;
        let authorization = single(headers, &AUTHORIZATION, "Authorization")?;
        let hmac = match (signature, date) {
            (Some(signature), Some(date)) => Some(HmacHeaders {
                signature: Signature::from_base64(signature)?,
                date: SignatureDate::parse(date)?,
            }),
            (Some(_), None) => return Err(HeaderError::MissingSignatureDate),
            (None, Some(_)) => return Err(HeaderError::MissingSignature),
            (None, None) => None,
        };
        let bearer = authorization
            .map(BearerToken::parse_authorization)
            .transpose()?;
        if hmac.is_none() && bearer.is_none() {
            return Err(HeaderError::NoAuthentication);
        }
        Ok(Self { hmac, bearer })
    }

    /// Headers from already parsed parts.
    ///
    /// # Errors
    /// [`HeaderError::NoAuthentication`] when both are `None`.
    pub fn new(
        hmac: Option<HmacHeaders>,
        bearer: Option<BearerToken>,
    ) -> Result<Self, HeaderError> {
        if hmac.is_none() && bearer.is_none() {
            return Err(HeaderError::NoAuthentication);
        }
        Ok(Self { hmac, bearer })
    }

    /// The HMAC headers, if the request had them.
    pub fn hmac(&self) -> Option<&HmacHeaders> {
        self.hmac.as_ref()
    }

    /// The bearer token, if the request had one.
    pub fn bearer(&self) -> Option<&BearerToken> {
        self.bearer.as_ref()
    }
}

/// The one value of header `name`, or `None`; an error when it repeats or is not ASCII.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    display: &'static str,
) -> Result<Option<&'h str>, HeaderError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HeaderError::Repeated { header: display });
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| HeaderError::NotVisibleAscii { header: display })
}

/// Why a webhook's authentication headers are unusable. The messages never repeat a
/// header's value: it may be a token, a signature or arbitrarily long input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Neither HMAC headers nor a bearer token.
    #[error("the request has neither BI-Signature headers nor an Authorization: Bearer token")]
    NoAuthentication,
    /// `BI-Signature` without `BI-Signature-Date`.
    #[error("BI-Signature is present but BI-Signature-Date is missing")]
    MissingSignatureDate,
    /// `BI-Signature-Date` without `BI-Signature`.
    #[error("BI-Signature-Date is present but BI-Signature is missing")]
    MissingSignature,
    /// A header appears more than once.
    #[error("the {header} header appears more than once")]
    Repeated {
        /// The header's name.
        header: &'static str,
    },
    /// A header holds bytes other than visible ASCII.
    #[error("the {header} header holds bytes that are not visible ASCII")]
    NotVisibleAscii {
        /// The header's name.
        header: &'static str,
    },
    /// `BI-Signature` is not standard, padded base64.
    #[error("BI-Signature is not valid base64 (standard alphabet, with padding)")]
    SignatureNotBase64,
    /// `BI-Signature` decodes to other than the 32 bytes of an HMAC-SHA256.
    #[error("BI-Signature decodes to {len} bytes; an HMAC-SHA256 signature has 32")]
    SignatureWrongLength {
        /// The decoded length (or a lower bound, for very long values).
        len: usize,
    },
    /// `BI-Signature-Date` is a date and time with no `Z` or offset.
    #[error("BI-Signature-Date has no timezone (expected Z or an offset such as +00:00)")]
    DateWithoutTimezone,
    /// `BI-Signature-Date` has more than nine fraction digits.
    #[error("BI-Signature-Date has more than 9 fraction digits")]
    DateTooPrecise,
    /// `BI-Signature-Date` is not an RFC 3339 date.
    #[error(
        "BI-Signature-Date is not a valid ISO 8601 date and time (expected e.g. 2022-06-27T11:08:52.577831Z)"
    )]
    DateInvalid,
    /// `Authorization` uses another scheme than Bearer.
    #[error("the Authorization header is not a Bearer token")]
    AuthorizationNotBearer,
    /// `Authorization: Bearer` with nothing after it.
    #[error("the Authorization header has an empty Bearer token")]
    EmptyBearerToken,
    /// The bearer token has characters a token cannot have.
    #[error("the Authorization Bearer token has characters a token cannot have")]
    MalformedBearerToken,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
    }

    type Pairs<'a> = Vec<(&'a str, &'a [u8])>;

    const SIG: &[u8] = b"GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo=";
    const DATE: &[u8] = b"2022-06-27T11:08:52.577831Z";

    #[test]
    fn dates_accepted() {
        for raw in [
            "2022-06-27T11:08:52Z",
            "2022-06-27T11:08:52.5Z",
            "2022-06-27T11:08:52.577831Z",
            "2022-06-27T11:08:52.123456789Z",
            "2022-06-27T13:08:52.577831+02:00",
            "2022-06-27T06:08:52-05:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            let date = SignatureDate::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(date.raw(), raw);
        }
        let a = SignatureDate::parse("2022-06-27T13:08:52.577831+02:00").unwrap();
        let b = SignatureDate::parse("2022-06-27T11:08:52.577831Z").unwrap();
        assert_eq!(a.at(), b.at());
    }

    #[test]
    fn dates_refused() {
        let cases = [
            (
                "2022-06-27T11:08:52.577831",
                HeaderError::DateWithoutTimezone,
            ),
            ("2022-06-27T11:08:52", HeaderError::DateWithoutTimezone),
            (
                "2022-06-27T11:08:52.1234567890Z",
                HeaderError::DateTooPrecise,
            ),
            ("2022-06-27", HeaderError::DateInvalid),
            ("yesterday", HeaderError::DateInvalid),
            ("2022-13-27T11:08:52Z", HeaderError::DateInvalid),
            ("2022-06-27T11:08:60Z", HeaderError::DateInvalid),
            ("", HeaderError::DateInvalid),
            ("2022-06-27T11:08:52.Z", HeaderError::DateInvalid),
        ];
        let long = format!("2022-06-27T11:08:52.{}Z", "0".repeat(100));
        let refused: Vec<_> = cases
            .iter()
            .map(|(raw, _)| *raw)
            .chain([long.as_str()])
            .map(|raw| (raw, SignatureDate::parse(raw).err()))
            .collect();
        let expected: Vec<_> = cases
            .iter()
            .map(|(raw, e)| (*raw, Some(e.clone())))
            .chain([(long.as_str(), Some(HeaderError::DateInvalid))])
            .collect();
        assert_eq!(refused, expected);
    }

    #[test]
    fn hmac_headers() {
        let parsed = PowensHeaders::from_header_map(&map(&[
            ("BI-Signature", SIG),
            ("bi-signature-date", DATE),
        ]))
        .unwrap();
        let hmac = parsed.hmac().unwrap();
        assert_eq!(hmac.date.raw(), "2022-06-27T11:08:52.577831Z");
        assert_eq!(
            hmac.signature.to_base64(),
            std::str::from_utf8(SIG).unwrap()
        );
        assert!(parsed.bearer().is_none());
    }

    #[test]
    fn header_errors() {
        let cases: Vec<(Pairs<'_>, HeaderError)> = vec![
            (vec![], HeaderError::NoAuthentication),
            (
                vec![("bi-signature", SIG)],
                HeaderError::MissingSignatureDate,
            ),
            (
                vec![("bi-signature-date", DATE)],
                HeaderError::MissingSignature,
            ),
            (
                vec![
                    ("bi-signature", SIG),
                    ("bi-signature", SIG),
                    ("bi-signature-date", DATE),
                ],
                HeaderError::Repeated {
                    header: "BI-Signature",
                },
            ),
            (
                vec![
                    ("bi-signature", "Zé".as_bytes()),
                    ("bi-signature-date", DATE),
                ],
                HeaderError::NotVisibleAscii {
                    header: "BI-Signature",
                },
            ),
            (
                vec![
                    ("bi-signature", b"not base64!"),
                    ("bi-signature-date", DATE),
                ],
                HeaderError::SignatureNotBase64,
            ),
            (
                vec![
                    (
                        "bi-signature",
                        b"GVtud1v5GUAqTGvCgbxdjk+/+KTNLYKdQe4j88dxTbo",
                    ),
                    ("bi-signature-date", DATE),
                ],
                HeaderError::SignatureNotBase64,
            ),
            (
                vec![("authorization", b"Basic dXNlcjpwYXNz")],
                HeaderError::AuthorizationNotBearer,
            ),
            (
                vec![("authorization", b"Bearer")],
                HeaderError::EmptyBearerToken,
            ),
            (
                vec![("authorization", b"Bearer   ")],
                HeaderError::EmptyBearerToken,
            ),
            (
                vec![("authorization", b"Bearer a b")],
                HeaderError::MalformedBearerToken,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                PowensHeaders::from_header_map(&map(&pairs)),
                Err(expected.clone()),
                "{expected}"
            );
        }
    }

    #[test]
    fn bearer_only_and_both() {
        let parsed =
            PowensHeaders::from_header_map(&map(&[("authorization", b"bearer abc.DEF_12=")]))
                .unwrap();
        assert_eq!(parsed.bearer().unwrap().as_str(), "abc.DEF_12=");
        assert!(parsed.hmac().is_none());
        let both = PowensHeaders::from_header_map(&map(&[
            ("authorization", b"Bearer tok"),
            ("bi-signature", SIG),
            ("bi-signature-date", DATE),
        ]))
        .unwrap();
        assert!(both.hmac().is_some() && both.bearer().is_some());
        assert!(!format!("{both:?}").contains("tok"));
    }
}
