//! TeaL's websocket protocol: the client's frames, read once into types, and the
//! server's messages, written as TeaL writes them (compact JSON, `type` first, non-ASCII
//! escaped, null fields written).
//!
//! Public so that the fuzz target and Rust clients can read frames as the dispatcher
//! does.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::amq::TealExchange;
use crate::domain::Domain;
use crate::message::{
    CallbackMessage, MessageError, OpenIdCibaCallbackMessage, PowensWebhookMessage,
};
use crate::relay::callback::{CallbackRecord, CallbackState, check_lifetime};
use crate::relay::consume::Incoming;
use crate::teal_json;
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

impl CallbackCreation {
    /// The state and its record, checked as TeaL does at `now`; the
    /// `callback_creation_failure` detail when refused.
    ///
    /// # Errors
    /// The detail, TeaL's text for a lifetime out of its limits.
    pub(crate) fn record(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(CallbackState, CallbackRecord), String> {
        let state = CallbackState::parse(&self.state).map_err(|e| e.to_string())?;
        let url = match &self.final_redirect_url {
            None => None,
            Some(text) => Some(
                url::Url::parse(text)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                    .ok_or("final_redirect_url must be an http:// or https:// URL.")?,
            ),
        };
        let expires_at = self.expires_at.to_utc();
        check_lifetime(expires_at, now).map_err(|e| e.to_string())?;
        Ok((
            state,
            CallbackRecord::new(expires_at, url, self.with_fragment),
        ))
    }
}

/// A server message, as TeaL's pydantic models write it: `type` first, then the
/// message's fields.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    CallbackCreationFailure { state: &'a str, detail: &'a str },
    Callback(&'a CallbackMessage),
    OpenidCibaCallback(&'a OpenIdCibaCallbackMessage),
    PowensWebhook(&'a PowensWebhookMessage),
}

/// The kind of a pushed message, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    CallbackCreationFailure,
    Callback,
    OpenidCibaCallback,
    PowensWebhook,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::CallbackCreationFailure => "callback_creation_failure",
            Self::Callback => "callback",
            Self::OpenidCibaCallback => "openid_ciba_callback",
            Self::PowensWebhook => "powens_webhook",
        }
    }
}

/// The frame pushed for `message`.
pub(crate) fn push_frame(message: &Incoming) -> (Kind, String) {
    let (kind, server) = match message {
        Incoming::Callback(m) => (Kind::Callback, ServerMessage::Callback(m)),
        Incoming::OpenIdCiba(m) => (
            Kind::OpenidCibaCallback,
            ServerMessage::OpenidCibaCallback(m),
        ),
        Incoming::Webhook(m) => (Kind::PowensWebhook, ServerMessage::PowensWebhook(m)),
    };
    (kind, to_text(&server))
}

/// The `callback_creation_failure` frame.
pub(crate) fn failure_frame(state: &str, detail: &str) -> String {
    to_text(&ServerMessage::CallbackCreationFailure { state, detail })
}

fn to_text(message: &ServerMessage<'_>) -> String {
    // teal_json writes ASCII only.
    String::from_utf8(teal_json::to_vec(message)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::TealMessage;

    #[test]
    fn a_pushed_webhook_is_the_message_with_its_type_first() {
        let body = r#"{"timestamp":"2023-05-01T12:00:00","domain":"budgea.biapi.pro","event":"CONNECTION_SYNCED","hmac_signature":{"signature":"kXDK","payload_prefix":"POST./x.2022-06-27T11:08:52.577831Z.","signature_date":"2022-06-27T11:08:52.577831+00:00"},"user_token":null,"payload":"{\"name\": \"Caf\u00e9\"}"}"#;
        let message = PowensWebhookMessage::from_json(body.as_bytes()).unwrap();
        let (kind, frame) = push_frame(&Incoming::Webhook(message));
        assert_eq!(kind, Kind::PowensWebhook);
        assert_eq!(
            frame,
            format!(r#"{{"type":"powens_webhook",{}"#, &body[1..])
        );
    }

    #[test]
    fn a_pushed_ciba_callback_writes_its_null_fields() {
        let body =
            r#"{"timestamp":"2024-01-01T12:00:00.123456","request_id":"r1","access_token":"t"}"#;
        let message = OpenIdCibaCallbackMessage::from_json(body.as_bytes()).unwrap();
        let (_, frame) = push_frame(&Incoming::OpenIdCiba(message));
        assert_eq!(
            frame,
            r#"{"type":"openid_ciba_callback","timestamp":"2024-01-01T12:00:00.123456","request_id":"r1","access_token":"t","push_token":null,"push_error":null}"#
        );
        assert_eq!(
            failure_frame("s", "Callback expiration date was too early."),
            r#"{"type":"callback_creation_failure","state":"s","detail":"Callback expiration date was too early."}"#
        );
    }

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
            create(now, "null").unwrap_err(),
            "Callback expiration date was too early."
        );
        assert_eq!(
            create(now + chrono::TimeDelta::days(8), "null").unwrap_err(),
            "Callback expiration was too late; a maximum of 7 days is enforced."
        );
        assert!(create(now + hour, r#""javascript:alert(1)""#).is_err());
    }
}
