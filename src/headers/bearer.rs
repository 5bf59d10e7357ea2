//! `Authorization: Bearer <token>`.

use std::fmt;

use crate::header_error::HeaderError;

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
