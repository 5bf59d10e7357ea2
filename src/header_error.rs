//! Why a webhook's authentication headers are unusable: an error of its own module, so
//! that the signature's parser (which reports malformed `BI-Signature` values) and the
//! headers' parser (which holds a parsed signature) do not depend on each other.

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
