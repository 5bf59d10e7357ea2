//! TeaL's websocket protocol, the server's side: each message pushed as TeaL writes it
//! (compact JSON, `type` first, non-ASCII escaped, null fields written).

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;

use crate::amq::TealExchange;
use crate::message::TealMessage;
use crate::relay::consume::Incoming;
use crate::teal_json;

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
    use crate::message::{OpenIdCibaCallbackMessage, PowensWebhookMessage};

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
}
