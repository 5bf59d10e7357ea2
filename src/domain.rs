//! Validated names taken from the webhook URL: the Powens domain and the event.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The suffix every Powens API domain ends with.
pub const POWENS_DOMAIN_SUFFIX: &str = ".biapi.pro";

/// Longest accepted domain: the DNS limit for a name.
const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;
/// Longest accepted event name. Powens' longest today is 29 characters.
pub const MAX_EVENT_LEN: usize = 64;

/// The impls a validated text type shares: parsing from `&str` and `String` (serde
/// deserializes through `TryFrom<String>`, so a message with an invalid value is
/// refused), `Display` as the text, `Debug` with the type's name.
macro_rules! validated_text {
    ($name:ident, $error:ty) => {
        impl FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                Self::parse(&text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

validated_text!(Domain, DomainError);
validated_text!(Event, EventError);

/// A Powens API domain such as `budgea.biapi.pro`: the routing key of
/// `powens_domain_webhooks`.
///
/// Valid means: at most 253 bytes, ends in `.biapi.pro` with at least one label before
/// it, every label 1–63 characters of ASCII letters, digits and `-`, not starting or
/// ending with `-`. DNS names are case-insensitive, so the domain is stored in lower
/// case: `Budgea.biapi.pro` and `budgea.biapi.pro` route the same way.
///
/// ```
/// use powens_webhooks::Domain;
///
/// let domain: Domain = "Budgea.biapi.pro".parse()?;
/// assert_eq!(domain.as_str(), "budgea.biapi.pro");
/// assert!("evil.example.com".parse::<Domain>().is_err());
/// # Ok::<(), powens_webhooks::DomainError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Domain(String);

impl Domain {
    /// Validates `text` as a Powens domain.
    ///
    /// # Errors
    /// A [`DomainError`] naming the rule `text` breaks.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        if text.is_empty() {
            return Err(DomainError::Empty);
        }
        if text.len() > MAX_DOMAIN_LEN {
            return Err(DomainError::TooLong { len: text.len() });
        }
        let lower = text.to_ascii_lowercase();
        let Some(name) = lower.strip_suffix(POWENS_DOMAIN_SUFFIX) else {
            return Err(DomainError::NotPowens);
        };
        if name.is_empty() {
            return Err(DomainError::NoName);
        }
        for label in name.split('.') {
            let valid_chars = label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if label.is_empty()
                || label.len() > MAX_LABEL_LEN
                || !valid_chars
                || label.starts_with('-')
                || label.ends_with('-')
            {
                return Err(DomainError::BadLabel);
            }
        }
        Ok(Self(lower))
    }

    /// The domain in lower case, e.g. `budgea.biapi.pro`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a text is not a Powens domain. The text itself is not repeated: it may be
/// arbitrarily long attacker input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Nothing was given.
    #[error("the Powens domain is empty")]
    Empty,
    /// Longer than a DNS name can be.
    #[error("the Powens domain is {len} bytes long, more than the 253 a DNS name allows")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Does not end in `.biapi.pro`.
    #[error("the domain does not end in .biapi.pro, so it is not a Powens domain")]
    NotPowens,
    /// Is `.biapi.pro` alone.
    #[error("the Powens domain has no name before .biapi.pro")]
    NoName,
    /// A label is empty, too long, or has a character other than letters, digits and `-`.
    #[error(
        "the Powens domain has an invalid label: each part between dots must be 1-63 letters, digits or '-', not starting or ending with '-'"
    )]
    BadLabel,
}

/// Every event Powens documents (SPEC §2). Events outside this list are still valid
/// [`Event`]s: Powens adds events, and they must be relayed.
pub const KNOWN_EVENTS: [&str; 16] = [
    "USER_CREATED",
    "USER_DELETED",
    "USER_SYNCED",
    "CONNECTION_SYNCED",
    "CONNECTION_DELETED",
    "ACCOUNTS_FETCHED",
    "ACCOUNT_CATEGORIZED",
    "ACCOUNT_SYNCED",
    "ACCOUNT_DISABLED",
    "ACCOUNT_ENABLED",
    "ACCOUNT_FOUND",
    "ACCOUNT_OWNERSHIPS_FOUND",
    "TRANSACTION_ATTACHMENTS_FOUND",
    "SUBSCRIPTION_SYNCED",
    "SUBSCRIPTION_FOUND",
    "PAYMENT_STATE_UPDATED",
];

/// A webhook event name such as `CONNECTION_SYNCED`, as it appears in the URL.
///
/// Valid means 1–64 characters of ASCII letters, digits, `_`, `-` and `.`. The name is
/// kept as given (no case change): it is part of the signed ENDPOINT.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Event(String);

impl Event {
    /// Validates `text` as an event name.
    ///
    /// # Errors
    /// [`EventError`] when `text` is empty, too long, or has another character.
    pub fn parse(text: &str) -> Result<Self, EventError> {
        if text.len() > MAX_EVENT_LEN {
            return Err(EventError::TooLong { len: text.len() });
        }
        if text.is_empty() {
            return Err(EventError::Empty);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(EventError::BadCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    /// The event name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether Powens documents this event (see [`KNOWN_EVENTS`]).
    pub fn is_known(&self) -> bool {
        KNOWN_EVENTS.contains(&self.0.as_str())
    }
}

/// Why a text is not an event name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Nothing was given.
    #[error("the event name is empty")]
    Empty,
    /// Longer than [`MAX_EVENT_LEN`].
    #[error("the event name is {len} bytes long, more than the 64 allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A character other than ASCII letters, digits, `_`, `-` and `.`.
    #[error("the event name may only hold ASCII letters, digits, '_', '-' and '.'")]
    BadCharacter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains() {
        for ok in ["budgea.biapi.pro", "a.b-c.biapi.pro", "x1.biapi.pro"] {
            assert_eq!(Domain::parse(ok).unwrap().as_str(), ok);
        }
        let refused = [
            (DomainError::Empty, &[""][..]),
            (DomainError::NoName, &[".biapi.pro"]),
            (
                DomainError::NotPowens,
                &["biapi.pro", "example.com", "budgea.biapi.pro.evil.com"],
            ),
            (
                DomainError::BadLabel,
                &[
                    "a..b.biapi.pro",
                    "../x.biapi.pro",
                    "a/b.biapi.pro",
                    "-a.biapi.pro",
                    "a-.biapi.pro",
                    "caf\u{e9}.biapi.pro",
                    "a b.biapi.pro",
                ],
            ),
        ];
        for (expected, texts) in refused {
            for text in texts {
                assert_eq!(Domain::parse(text), Err(expected.clone()), "{text:?}");
            }
        }
        let long_label = format!("{}.biapi.pro", "a".repeat(64));
        assert_eq!(Domain::parse(&long_label), Err(DomainError::BadLabel));
        let huge = format!("{}biapi.pro", "a.".repeat(2048));
        assert!(matches!(
            Domain::parse(&huge),
            Err(DomainError::TooLong { len: 4105 })
        ));
    }

    #[test]
    fn domain_is_case_insensitive() {
        assert_eq!(
            Domain::parse("BUDGEA.BiApI.pro").unwrap(),
            Domain::parse("budgea.biapi.pro").unwrap()
        );
    }

    #[test]
    fn events() {
        for known in KNOWN_EVENTS {
            assert!(Event::parse(known).unwrap().is_known());
        }
        let new = Event::parse("SOMETHING_NEW_2030").unwrap();
        assert!(!new.is_known());
        assert_eq!(Event::parse(""), Err(EventError::Empty));
        assert_eq!(Event::parse("A B"), Err(EventError::BadCharacter));
        assert_eq!(Event::parse("A/B"), Err(EventError::BadCharacter));
        assert_eq!(
            Event::parse(&"A".repeat(1024)),
            Err(EventError::TooLong { len: 1024 })
        );
    }
}
