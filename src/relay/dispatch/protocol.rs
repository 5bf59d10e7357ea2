//! TeaL's websocket protocol, the client's side: its frames, read once into types (the
//! server's are in `frames`).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::amq::TealExchange;
use crate::domain::Domain;
use crate::message::MessageError;
use crate::relay::callback::{
    CallbackRecord, CallbackState, LifetimeError, StateError, check_lifetime,
};
use crate::time::IsoDateTime;

/// A client frame: `{create?, register_to?}`, unknown keys ignored.
#[derive(Debug, Deserialize)]
#[non_exhaustive]
pub(crate) struct ClientMessage {
    /// A callback to write in the store.
    #[serde(default)]
    pub(crate) create: Option<CallbackCreation>,
    /// What to receive from now on.
    #[serde(default)]
    pub(crate) register_to: Option<Registration>,
}

/// `create`: a callback to write in the store.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackCreation {
    #[serde(rename = "type")]
    _type: CreationType,
    /// The state, as sent (checked by [`CallbackCreation::record`]).
    pub(crate) state: String,
    #[serde(default)]
    final_redirect_url: Option<String>,
    #[serde(default)]
    with_fragment: bool,
    expires_at: IsoDateTime,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CreationType {
    Callback,
}

/// `register_to`, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Registration {
    /// Callbacks of a state.
    Callback {
        /// The state.
        state: String,
    },
    /// CIBA notifications of an authentication request.
    OpenidCibaCallback {
        /// The authentication request id.
        request_id: String,
    },
    /// Webhooks of a Powens domain.
    PowensDomain {
        /// `budgea` or `budgea.biapi.pro`.
        powens_domain: String,
    },
}

/// Why a frame is refused: the close code and its reason (sent to the client; never
/// quoting the frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError {
    /// The websocket close code (1007).
    pub(crate) code: u16,
    /// What is wrong.
    pub(crate) reason: String,
}

/// 1007: the frame is text but not a valid `ClientMessage`.
pub(crate) const INVALID_PAYLOAD: u16 = 1007;

impl ClientMessage {
    /// Reads a text frame.
    ///
    /// # Errors
    /// [`FrameError`] (1007) saying, without quoting the frame, what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, FrameError> {
        serde_json::from_str(text).map_err(|e| {
            let what = match MessageError::from_json(e) {
                MessageError::Json { what, .. } => what,
                other => other.to_string(),
            };
            FrameError {
                code: INVALID_PAYLOAD,
                reason: format!("not a ClientMessage: {what}"),
            }
        })
    }
}

impl Registration {
    /// The exchange and routing key this registration binds: the full Powens domain
    /// (`budgea` and `budgea.biapi.pro` alike), the state, or the request id.
    ///
    /// # Errors
    /// [`FrameError`] (1007) for an empty or invalid key.
    pub(crate) fn binding(&self) -> Result<(TealExchange, String), FrameError> {
        let invalid = |reason: String| FrameError {
            code: INVALID_PAYLOAD,
            reason,
        };
        match self {
            Self::Callback { state } => CallbackState::parse(state)
                .map(|s| (TealExchange::Callbacks, s.as_str().to_owned()))
                .map_err(|e| invalid(format!("register_to.state: {e}"))),
            Self::OpenidCibaCallback { request_id } => {
                if request_id.is_empty() || request_id.len() > 255 {
                    return Err(invalid(
                        "register_to.request_id must be 1 to 255 bytes".to_owned(),
                    ));
                }
                Ok((TealExchange::OpenIdCibaCallbacks, request_id.clone()))
            }
            Self::PowensDomain { powens_domain } => full_domain(powens_domain)
                .map(|d| (TealExchange::PowensDomainWebhooks, d.as_str().to_owned()))
                .map_err(|()| {
                    invalid(
                        "register_to.powens_domain must be a Powens domain, e.g. budgea or \
                         budgea.biapi.pro"
                            .to_owned(),
                    )
                }),
        }
    }
}

/// `budgea` or `budgea.biapi.pro` as the full domain the relay routes by.
fn full_domain(text: &str) -> Result<Domain, ()> {
    if text.contains('.') {
        Domain::parse(text).map_err(drop)
    } else {
        Domain::parse(&format!("{text}{}", crate::domain::POWENS_DOMAIN_SUFFIX)).map_err(drop)
    }
}

/// Why a `create` is refused: its `Display` is the `callback_creation_failure` detail
/// (TeaL's text for a lifetime out of its limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CreationRefused {
    /// The state is not one.
    #[error(transparent)]
    State(#[from] StateError),
    /// The final redirect URL is not an `http(s)://` URL with a host.
    #[error("final_redirect_url must be an http:// or https:// URL.")]
    RedirectUrl,
    /// The expiry is out of TeaL's limits.
    #[error(transparent)]
    Lifetime(#[from] LifetimeError),
}

impl CallbackCreation {
    /// The state and its record, checked as TeaL does at `now`.
    ///
    /// # Errors
    /// [`CreationRefused`], whose text is the `callback_creation_failure` detail.
    pub(crate) fn record(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(CallbackState, CallbackRecord), CreationRefused> {
        let state = CallbackState::parse(&self.state)?;
        let url = match &self.final_redirect_url {
            None => None,
            Some(text) => Some(
                url::Url::parse(text)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                    .ok_or(CreationRefused::RedirectUrl)?,
            ),
        };
        let expires_at = self.expires_at.to_utc();
        check_lifetime(expires_at, now)?;
        Ok((
            state,
            CallbackRecord::new(expires_at, url, self.with_fragment),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_bind_the_full_domain() {
        for text in [
            r#"{"register_to":{"type":"powens_domain","powens_domain":"budgea"}}"#,
            r#"{"register_to":{"type":"powens_domain","powens_domain":"Budgea.biapi.pro"},"other":1}"#,
        ] {
            let message = ClientMessage::parse(text).unwrap();
            let binding = message.register_to.unwrap().binding().unwrap();
            assert_eq!(
                binding,
                (
                    TealExchange::PowensDomainWebhooks,
                    "budgea.biapi.pro".into()
                )
            );
        }
        let empty = ClientMessage::parse(r#"{"register_to":{"type":"callback","state":""}}"#);
        assert_eq!(
            empty
                .unwrap()
                .register_to
                .unwrap()
                .binding()
                .unwrap_err()
                .code,
            1007
        );
        let evil = r#"{"register_to":{"type":"powens_domain","powens_domain":"evil.com"}}"#;
        assert!(
            ClientMessage::parse(evil)
                .unwrap()
                .register_to
                .unwrap()
                .binding()
                .is_err()
        );
    }

    #[test]
    fn frames_that_are_not_client_messages_are_refused_without_quoting_them() {
        for text in [
            "hunter2",
            r#"{"register_to":{"type":"nope","x":"hunter2"}}"#,
            r#"{"create":{"type":"callback","state":"s"}}"#,
            r#"[1]"#,
        ] {
            let error = ClientMessage::parse(text).unwrap_err();
            assert_eq!(error.code, 1007, "{text}");
            assert!(!error.reason.contains("hunter2"), "{}", error.reason);
        }
    }

    #[test]
    fn creation_follows_teals_limits() {
        let now = Utc::now();
        let create = |expires: DateTime<Utc>, url: &str| {
            let text = format!(
                r#"{{"create":{{"type":"callback","state":"s1","final_redirect_url":{url},"expires_at":"{}"}}}}"#,
                expires.format("%Y-%m-%dT%H:%M:%S%.6f")
            );
            ClientMessage::parse(&text)
                .unwrap()
                .create
                .unwrap()
                .record(now)
        };
        let hour = chrono::TimeDelta::hours(1);
        let (state, record) = create(now + hour, r#""https://app.example.com/done""#).unwrap();
        assert_eq!(state.as_str(), "s1");
        assert_eq!(
            record.final_redirect_url.unwrap().as_str(),
            "https://app.example.com/done"
        );
        assert_eq!(
            create(now, "null").unwrap_err().to_string(),
            "Callback expiration date was too early."
        );
        assert_eq!(
            create(now + chrono::TimeDelta::days(8), "null")
                .unwrap_err()
                .to_string(),
            "Callback expiration was too late; a maximum of 7 days is enforced."
        );
        assert!(create(now + hour, r#""javascript:alert(1)""#).is_err());
    }
}
