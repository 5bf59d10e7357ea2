//! Parsing of the request headers Powens authenticates a webhook with.

mod bearer;
mod date;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

pub use crate::header_error::HeaderError;
use crate::signature::Signature;
pub use bearer::BearerToken;
pub use date::SignatureDate;

/// Name of the header carrying the base64 HMAC.
pub const BI_SIGNATURE: &str = "bi-signature";
/// Name of the header carrying the signing date.
pub const BI_SIGNATURE_DATE: &str = "bi-signature-date";

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
