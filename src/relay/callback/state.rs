//! A callback's state (the key everything is found by) and what is stored for it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest state accepted, in bytes. Powens' states and TeaL's clients' are far shorter;
/// the bound keeps Redis keys and routing keys (255 bytes in AMQP) sane.
pub(crate) const MAX_STATE_LEN: usize = 200;

/// A callback state, as a client created it and as the browser brings it back: the
/// Redis key `callback_<state>` and the routing key of `callbacks`. Untrusted: parsed
/// once, here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CallbackState(String);

/// Why a text is not a callback state. The text is not repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum StateError {
    /// `state=` with nothing after it (TeaL's `Empty state`).
    #[error("Empty state")]
    Empty,
    /// Longer than [`MAX_STATE_LEN`].
    #[error("the state is longer than 200 bytes")]
    TooLong,
    /// A control character (a newline, a NUL…): no client creates such a state.
    #[error("the state holds a control character")]
    ControlCharacter,
    /// No callback is known for the state (or it expired, or was used once already).
    #[error("Unknown state")]
    Unknown,
}

impl CallbackState {
    /// Validates `text` as a state.
    ///
    /// # Errors
    /// [`StateError`].
    pub(crate) fn parse(text: &str) -> Result<Self, StateError> {
        if text.is_empty() {
            return Err(StateError::Empty);
        }
        if text.len() > MAX_STATE_LEN {
            return Err(StateError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(StateError::ControlCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    /// The state's text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The Redis key TeaL stores it under: `callback_<state>`.
    pub(crate) fn redis_key(&self) -> String {
        format!("callback_{}", self.0)
    }
}

impl fmt::Display for CallbackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CallbackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallbackState({:?})", self.0)
    }
}

/// What is stored for a state, in TeaL's JSON:
/// `{"expires_at": naive UTC | null, "final_redirect_url": url | null,
/// "with_fragment": bool}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallbackRecord {
    /// When the callback stops being accepted (naive UTC); TeaL accepts `null` (never).
    #[serde(with = "naive_utc")]
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// Where the browser is sent once the callback is published (`302`); `None`
    /// answers `204`.
    pub(crate) final_redirect_url: Option<Url>,
    /// Whether the browser must first send the URL's fragment (the fragment page).
    #[serde(default)]
    pub(crate) with_fragment: bool,
}

impl CallbackRecord {
    /// A record expiring at `expires_at`, kept to the microsecond as TeaL writes it (so
    /// that what is read back equals what was written).
    pub(crate) fn new(
        expires_at: DateTime<Utc>,
        final_redirect_url: Option<Url>,
        with_fragment: bool,
    ) -> Self {
        let micros = expires_at.timestamp_micros();
        Self {
            expires_at: Some(DateTime::from_timestamp_micros(micros).unwrap_or(expires_at)),
            final_redirect_url,
            with_fragment,
        }
    }

    /// Whether the callback has expired at `now` (TeaL: `now >= expires_at`).
    pub(crate) fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|end| now >= end)
    }

    /// TeaL's JSON.
    ///
    /// # Errors
    /// serde_json's, should a record ever fail to serialize: an error, never an empty
    /// record in the store.
    pub(crate) fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Reads TeaL's JSON; `None` when it is not (TeaL counts that as unknown).
    pub(crate) fn from_json(text: &[u8]) -> Option<Self> {
        serde_json::from_slice(text).ok()
    }
}

/// The longest a callback may live, and the least: TeaL's limits.
pub(crate) const MAX_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// A callback must live at least this long from its creation.
pub(crate) const MIN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Why a callback cannot be created: TeaL's `callback_creation_failure` details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LifetimeError {
    /// Expires before now + 10 s.
    #[error("Callback expiration date was too early.")]
    TooEarly,
    /// Expires after now + 10 s + 7 days.
    #[error("Callback expiration was too late; a maximum of 7 days is enforced.")]
    TooLate,
}

/// Checks `expires_at` against TeaL's limits at `now`: at least now + 10 s, at most
/// 7 days after that.
///
/// # Errors
/// [`LifetimeError`].
pub(crate) fn check_lifetime(
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), LifetimeError> {
    let earliest = now + MIN_LIFETIME;
    if expires_at < earliest {
        return Err(LifetimeError::TooEarly);
    }
    if expires_at > earliest + MAX_LIFETIME {
        return Err(LifetimeError::TooLate);
    }
    Ok(())
}

/// `expires_at` as TeaL writes it: naive UTC, ISO 8601 without offset, microseconds
/// when not zero.
mod naive_utc {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::IsoDateTime;

    pub(crate) fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_str(&IsoDateTime::naive_utc(*at).to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let at: IsoDateTime = text.parse().map_err(serde::de::Error::custom)?;
        Ok(Some(at.to_utc()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn states_are_refused_when_empty_huge_or_with_control_characters() {
        assert_eq!(CallbackState::parse("s-1").unwrap().as_str(), "s-1");
        assert_eq!(
            CallbackState::parse("é ü").unwrap().redis_key(),
            "callback_é ü"
        );
        assert_eq!(CallbackState::parse(""), Err(StateError::Empty));
        assert_eq!(
            CallbackState::parse(&"x".repeat(201)),
            Err(StateError::TooLong)
        );
        for bad in ["a\nb", "a\0", "\u{7f}", "a\u{85}b"] {
            assert_eq!(
                CallbackState::parse(bad),
                Err(StateError::ControlCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn records_read_and_write_teal_json() {
        let teal = br#"{"expires_at": "2024-03-04T09:00:10.500000", "final_redirect_url": "https://app.example.org/done?x=1", "with_fragment": false}"#;
        let record = CallbackRecord::from_json(teal).unwrap();
        let at = Utc.with_ymd_and_hms(2024, 3, 4, 9, 0, 10).unwrap()
            + chrono::TimeDelta::milliseconds(500);
        assert_eq!(record.expires_at, Some(at));
        assert_eq!(
            record.to_json().unwrap(),
            r#"{"expires_at":"2024-03-04T09:00:10.500000","final_redirect_url":"https://app.example.org/done?x=1","with_fragment":false}"#
        );
        assert!(!record.is_expired(at - chrono::TimeDelta::microseconds(1)));
        assert!(record.is_expired(at));
        let never = CallbackRecord::from_json(
            br#"{"expires_at":null,"final_redirect_url":null,"with_fragment":true}"#,
        )
        .unwrap();
        assert!(!never.is_expired(Utc::now()) && never.with_fragment);
        for bad in [
            &b"{}"[..],
            b"not json",
            br#"{"expires_at":"yesterday","final_redirect_url":null}"#,
            br#"{"expires_at":null,"final_redirect_url":"not a url"}"#,
        ] {
            assert_eq!(CallbackRecord::from_json(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lifetimes_follow_teal_limits() {
        let now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            check_lifetime(now + chrono::TimeDelta::seconds(9), now),
            Err(LifetimeError::TooEarly)
        );
        assert_eq!(
            check_lifetime(now + chrono::TimeDelta::seconds(10), now),
            Ok(())
        );
        let latest = now + chrono::TimeDelta::seconds(10) + chrono::TimeDelta::days(7);
        assert_eq!(check_lifetime(latest, now), Ok(()));
        assert_eq!(
            check_lifetime(latest + chrono::TimeDelta::seconds(1), now),
            Err(LifetimeError::TooLate)
        );
    }
}
