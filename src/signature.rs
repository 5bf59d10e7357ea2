//! The `BI-Signature` HMAC: the signed prefix and signing.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::header_error::HeaderError;
use crate::secret::Secret;

pub(crate) type HmacSha256 = Hmac<Sha256>;

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
pub(crate) fn keyed(secret: &Secret) -> HmacSha256 {
    // HMAC takes keys of any length; the error branch cannot happen.
    <HmacSha256 as KeyInit>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"))
}

/// Feeds the concatenation of `parts` to `mac`.
pub(crate) fn feed(mac: &mut HmacSha256, parts: &[&[u8]]) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
