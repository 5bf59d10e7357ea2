//! HTTP Basic credentials for user `anonymous`, the password compared in constant time:
//! the dispatcher's websocket, as TeaL reads them (`Authorization: Basic <b64>` or,
//! only without that header, `?credentials=<b64>`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// Why a handshake is refused. The credentials are never repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Neither the header nor the query parameter.
    Missing,
    /// Not `Basic <base64 of user:password>`.
    Malformed,
    /// Another user, or a wrong password.
    Invalid,
}

impl Refused {
    /// The text of the 401 (TeaL's words).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Missing => "Authentication required",
            Self::Malformed => "Incorrect HTTP-Basic authorization header",
            Self::Invalid => "Invalid credentials",
        }
    }

    /// The metrics label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing_credentials",
            Self::Malformed => "malformed_credentials",
            Self::Invalid => "invalid_credentials",
        }
    }
}

/// The dispatcher's password, kept as its SHA-256 so that comparing takes the same
/// time whatever the length or content of the guess.
pub(crate) struct Password([u8; 32]);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl Password {
    /// The password `secret`.
    pub(crate) fn new(secret: &Secret) -> Self {
        Self(Sha256::digest(secret.expose()).into())
    }

    fn matches(&self, guess: &[u8]) -> bool {
        let guess: [u8; 32] = Sha256::digest(guess).into();
        bool::from(self.0.ct_eq(&guess))
    }

    /// Checks the request's credentials: its `Authorization` header, or without one
    /// the `credentials` parameter of its `query`.
    ///
    /// # Errors
    /// [`Refused`].
    pub(crate) fn check(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), Refused> {
        let encoded = match headers.get(http::header::AUTHORIZATION) {
            Some(value) => basic(value.as_bytes()).ok_or(Refused::Malformed)?,
            None => query_credentials(query.unwrap_or_default()).ok_or(Refused::Missing)?,
        };
        let decoded = STANDARD.decode(encoded).map_err(|_| Refused::Malformed)?;
        if !decoded.is_ascii() {
            return Err(Refused::Malformed);
        }
        let colon = decoded
            .iter()
            .position(|&b| b == b':')
            .ok_or(Refused::Malformed)?;
        let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
        // Both checked, whatever the user, so that the time says nothing.
        let password_ok = self.matches(password);
        if user == b"anonymous" && password_ok {
            Ok(())
        } else {
            Err(Refused::Invalid)
        }
    }
}

/// The token of `Basic <token>` (TeaL's `^Basic (\S+)$`, case-sensitive).
fn basic(value: &[u8]) -> Option<Vec<u8>> {
    let token = value.strip_prefix(b"Basic ")?;
    (!token.is_empty() && !token.iter().any(u8::is_ascii_whitespace)).then(|| token.to_vec())
}

/// `credentials` of the query string, percent-decoded. A `+` stays a `+` (a base64
/// character), where TeaL's form decoding made it a space and then failed.
fn query_credentials(query: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let value = pair.strip_prefix("credentials=")?;
        Some(percent_encoding::percent_decode_str(value).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password() -> Password {
        Password::new(&Secret::new("s3cret+/=").unwrap())
    }

    fn with_header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn basic_header_or_query_parameter() {
        let good = STANDARD.encode("anonymous:s3cret+/=");
        let p = password();
        assert_eq!(
            p.check(&with_header(&format!("Basic {good}")), None),
            Ok(())
        );
        // The header wins over the query; a `+` in the query is kept.
        assert_eq!(
            p.check(&HeaderMap::new(), Some(&format!("x=1&credentials={good}"))),
            Ok(())
        );
        let encoded = good.replace('+', "%2B").replace('=', "%3D");
        assert_eq!(
            p.check(&HeaderMap::new(), Some(&format!("credentials={encoded}"))),
            Ok(())
        );
        assert_eq!(
            p.check(
                &with_header("Basic Zm9v"),
                Some(&format!("credentials={good}"))
            ),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn refusals() {
        let p = password();
        let none = HeaderMap::new();
        assert_eq!(p.check(&none, None), Err(Refused::Missing));
        assert_eq!(p.check(&none, Some("other=1")), Err(Refused::Missing));
        for header in [
            "basic abc",
            "Bearer abc",
            "Basic ",
            "Basic a b",
            "Basic !!!",
        ] {
            assert_eq!(
                p.check(&with_header(header), None),
                Err(Refused::Malformed),
                "{header}"
            );
        }
        let no_colon = STANDARD.encode("anonymous");
        assert_eq!(
            p.check(&with_header(&format!("Basic {no_colon}")), None),
            Err(Refused::Malformed)
        );
        for pair in [
            "anonymous:wrong",
            "admin:s3cret+/=",
            "anonymous:",
            "anonymous:s3cret+/=x",
        ] {
            let header = format!("Basic {}", STANDARD.encode(pair));
            assert_eq!(
                p.check(&with_header(&header), None),
                Err(Refused::Invalid),
                "{pair}"
            );
        }
        assert!(!format!("{p:?}").contains("s3cret"));
    }
}
