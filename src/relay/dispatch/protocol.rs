//! TeaL's websocket protocol: the client's frames, read once into types, and the
//! server's messages, written as TeaL writes them (compact JSON, `type` first, non-ASCII
//! escaped, null fields written).
//!
//! Public so that the fuzz target and Rust clients can read frames as the dispatcher
//! does.

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::amq::TealExchange;
use crate::domain::Domain;
use crate::message::{MessageError, TealMessage};
use crate::relay::callback::{
    CallbackRecord, CallbackState, LifetimeError, StateError, check_lifetime,
};
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

impl Kind {
    /// The kind of a message published on `exchange`.
    pub(crate) fn of(exchange: TealExchange) -> Self {
        match exchange {
            TealExchange::PowensDomainWebhooks => Self::PowensWebhook,
            TealExchange::Callbacks => Self::Callback,
            TealExchange::OpenIdCibaCallbacks => Self::OpenidCibaCallback,
        }
    }
}

/// A server frame could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameEncodingError {
    /// The message's JSON is not an object.
    #[error("the message is not a JSON object")]
    NotAnObject,
    /// The message's JSON is not UTF-8.
    #[error("the message is not UTF-8")]
    NotUtf8,
}

/// The server frame of a message of `kind` whose TeaL JSON is `json`: TeaL's pydantic
/// models write `type` first, then the message's own fields in its order, so the frame
/// is the message's JSON with `"type":"<kind>",` after its opening brace. Spliced, where
/// serializing the message again would cost a second pass over the payload (the
/// relay's in-process bus hands over the JSON it made, never parsed back).
///
/// # Errors
/// [`FrameEncodingError`]: not a JSON object, or not UTF-8.
pub(crate) fn server_frame(kind: Kind, json: &[u8]) -> Result<Utf8Bytes, FrameEncodingError> {
    let fields = json
        .strip_prefix(b"{")
        .ok_or(FrameEncodingError::NotAnObject)?;
    let label = kind.label();
    let mut frame = Vec::with_capacity(json.len() + label.len() + 12);
    frame.extend_from_slice(br#"{"type":""#);
    frame.extend_from_slice(label.as_bytes());
    frame.push(b'"');
    if fields.first() != Some(&b'}') {
        frame.push(b',');
    }
    frame.extend_from_slice(fields);
    Utf8Bytes::try_from(Bytes::from(frame)).map_err(|_| FrameEncodingError::NotUtf8)
}

/// The frame pushed for a message received from the broker: written as TeaL writes it
/// (compact, non-ASCII escaped, null fields written), whatever its publisher wrote.
///
/// # Errors
/// As [`server_frame`].
pub(crate) fn push_frame(message: &Incoming) -> Result<(Kind, Utf8Bytes), FrameEncodingError> {
    let (exchange, _) = message.route();
    let json = match message {
        Incoming::Callback(m) => m.to_json(),
        Incoming::OpenIdCiba(m) => m.to_json(),
        Incoming::Webhook(m) => m.to_json(),
    };
    let kind = Kind::of(exchange);
    Ok((kind, server_frame(kind, &json)?))
}

/// The `callback_creation_failure` frame.
///
/// # Errors
/// As [`server_frame`].
pub(crate) fn failure_frame(state: &str, detail: &str) -> Result<Utf8Bytes, FrameEncodingError> {
    #[derive(Serialize)]
    struct Failure<'a> {
        state: &'a str,
        detail: &'a str,
    }
    server_frame(
        Kind::CallbackCreationFailure,
        &teal_json::to_vec(&Failure { state, detail }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{OpenIdCibaCallbackMessage, PowensWebhookMessage, TealMessage};

    #[test]
    fn a_pushed_webhook_is_the_message_with_its_type_first() {
        let body = r#"{"timestamp":"2023-05-01T12:00:00","domain":"budgea.biapi.pro","event":"CONNECTION_SYNCED","hmac_signature":{"signature":"kXDK","payload_prefix":"POST./x.2022-06-27T11:08:52.577831Z.","signature_date":"2022-06-27T11:08:52.577831+00:00"},"user_token":null,"payload":"{\"name\": \"Caf\u00e9\"}"}"#;
        let message = PowensWebhookMessage::from_json(body.as_bytes()).unwrap();
        let (kind, frame) = push_frame(&Incoming::Webhook(message)).unwrap();
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
        let (_, frame) = push_frame(&Incoming::OpenIdCiba(message)).unwrap();
        assert_eq!(
            frame,
            r#"{"type":"openid_ciba_callback","timestamp":"2024-01-01T12:00:00.123456","request_id":"r1","access_token":"t","push_token":null,"push_error":null}"#
        );
        assert_eq!(
            failure_frame("s", "Callback expiration date was too early.").unwrap(),
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
