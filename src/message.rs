//! TeaL's AMQP messages, byte-compatible with what TeaL publishes: the wire types, which
//! depend on nothing above them (a request becomes a message in `request`; a message's
//! signature is checked in `verify`).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::amq::TealExchange;
use crate::domain::{Domain, Event};
use crate::headers::BearerToken;
use crate::teal_json;
use crate::time::IsoDateTime;

/// A TeaL message: JSON on one exchange, routed by one of its fields.
pub trait TealMessage: Serialize + DeserializeOwned {
    /// The exchange (before the prefix) TeaL publishes this message on.
    const EXCHANGE: TealExchange;

    /// The routing key TeaL publishes this message with.
    fn routing_key(&self) -> &str;

    /// The message as TeaL writes it: compact UTF-8 JSON with non-ASCII characters
    /// escaped (`\u00e9`), null fields written, fields in TeaL's order.
    fn to_json(&self) -> Vec<u8> {
        teal_json::to_vec(self)
    }

    /// Reads a message: unknown fields are ignored, missing optional fields are null.
    ///
    /// # Errors
    /// [`MessageError::Json`] saying where and, without quoting values, what is wrong.
    fn from_json(bytes: &[u8]) -> Result<Self, MessageError> {
        serde_json::from_slice(bytes).map_err(MessageError::from_json)
    }
}

/// A Powens webhook as published on `powens_domain_webhooks`, routed by `domain`.
///
/// As in every TeaL message here, an `Option` field is written as `null` when empty,
/// and read as `None` when missing.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowensWebhookMessage {
    /// When the relay received the webhook (naive UTC).
    pub timestamp: IsoDateTime,
    /// The Powens domain the webhook came from.
    pub domain: Domain,
    /// The event name, e.g. `CONNECTION_SYNCED`.
    pub event: Event,
    /// The HMAC headers, for consumers to verify; null when the request had none.
    pub hmac_signature: Option<PowensHmacSignature>,
    /// The bearer token the request carried, if any.
    pub user_token: Option<BearerToken>,
    /// The body, as UTF-8 text.
    pub payload: String,
}

impl TealMessage for PowensWebhookMessage {
    const EXCHANGE: TealExchange = TealExchange::PowensDomainWebhooks;
    fn routing_key(&self) -> &str {
        self.domain.as_str()
    }

    fn to_json(&self) -> Vec<u8> {
        // The payload is most of the message, and its quotes get escaped: size the buffer
        // once rather than doubling it up from a guess.
        let capacity = self.payload.len() + self.payload.len() / 8 + 512;
        teal_json::to_vec_with_capacity(self, capacity)
    }
}

impl PowensWebhookMessage {
    /// The body's `id_webhook_data`, when it is a JSON object carrying an integer there:
    /// Powens' identifier for deduplication.
    pub fn id_webhook_data(&self) -> Option<u64> {
        #[derive(Deserialize)]
        struct Id {
            id_webhook_data: Option<u64>,
        }
        serde_json::from_str::<Id>(&self.payload)
            .ok()
            .and_then(|id| id.id_webhook_data)
    }
}

impl fmt::Debug for PowensWebhookMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowensWebhookMessage")
            .field("timestamp", &self.timestamp)
            .field("domain", &self.domain)
            .field("event", &self.event)
            .field("hmac_signature", &self.hmac_signature)
            .field("user_token", &self.user_token)
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .finish()
    }
}

/// The HMAC headers of a webhook, forwarded so that consumers can verify it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowensHmacSignature {
    /// `BI-Signature`, as received (base64). Kept as text: TeaL forwards it unverified,
    /// and a malformed one must still reach the consumer to be refused there.
    pub signature: String,
    /// `METHOD.ENDPOINT.DATE.` exactly as signed.
    pub payload_prefix: String,
    /// `BI-Signature-Date`, parsed (TeaL writes it with its offset, e.g. `+00:00`).
    pub signature_date: Option<IsoDateTime>,
}

impl fmt::Debug for PowensHmacSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field named: a field added later must be placed here, shown or not.
        let Self {
            signature: _,
            payload_prefix,
            signature_date,
        } = self;
        f.debug_struct("PowensHmacSignature")
            .field("signature", &"[REDACTED]")
            .field("payload_prefix", payload_prefix)
            .field("signature_date", signature_date)
            .finish()
    }
}

/// A callback (redirection) as published on `callbacks`, routed by `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackMessage {
    /// When the callback was received (naive UTC).
    pub timestamp: IsoDateTime,
    /// The resulting callback URL, with parameters and fragment.
    pub url: String,
    /// The state the callback is for.
    pub state: String,
}

impl TealMessage for CallbackMessage {
    const EXCHANGE: TealExchange = TealExchange::Callbacks;
    fn routing_key(&self) -> &str {
        &self.state
    }
}

/// An OpenID CIBA notification as published on `openid_ciba_callbacks`, routed by
/// `request_id`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIdCibaCallbackMessage {
    /// When the notification was received (naive UTC).
    pub timestamp: IsoDateTime,
    /// The authentication request identifier.
    pub request_id: String,
    /// The access token that authenticated the ping or push callback.
    pub access_token: Option<String>,
    /// The tokens, for a successful push.
    pub push_token: Option<OpenIdCibaPushToken>,
    /// The error, for a failed push.
    pub push_error: Option<OpenIdCibaPushError>,
}

impl TealMessage for OpenIdCibaCallbackMessage {
    const EXCHANGE: TealExchange = TealExchange::OpenIdCibaCallbacks;
    fn routing_key(&self) -> &str {
        &self.request_id
    }
}

impl fmt::Debug for OpenIdCibaCallbackMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenIdCibaCallbackMessage")
            .field("timestamp", &self.timestamp)
            .field("request_id", &self.request_id)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("push_token", &self.push_token)
            .field("push_error", &self.push_error)
            .finish()
    }
}

/// The tokens of a successful OpenID CIBA push.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIdCibaPushToken {
    /// The access token.
    pub access_token: String,
    /// The access token's type.
    pub token_type: String,
    /// The refresh token.
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: IsoDateTime,
    /// The OpenID ID token (a missing field reads as `None`, as for every `Option`).
    pub id_token: Option<String>,
}

impl fmt::Debug for OpenIdCibaPushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenIdCibaPushToken")
            .field("access_token", &"[REDACTED]")
            .field("refresh_token", &"[REDACTED]")
            .field("id_token", &self.id_token.as_ref().map(|_| "[REDACTED]"))
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The error of a failed OpenID CIBA push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIdCibaPushError {
    /// The error code.
    pub error: String,
    /// The error's description.
    pub error_description: Option<String>,
}

/// Why a message could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The body is not UTF-8, and TeaL's messages carry it as text.
    #[error("the webhook body is not UTF-8 text (invalid byte at offset {valid_up_to})")]
    PayloadNotUtf8 {
        /// Length of the body's valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The message is not valid JSON of the expected shape.
    #[error("the message is not valid: {what} at line {line}, column {column}")]
    Json {
        /// What is wrong, without quoting any value of the message.
        what: String,
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
    },
}

impl MessageError {
    pub(crate) fn from_json(error: serde_json::Error) -> Self {
        use serde_json::error::Category;
        let text = error.to_string();
        // serde_json's data errors may quote values (a token, say): keep only those
        // that name a field, and give the category for the rest.
        let what = match error.classify() {
            Category::Io => "it could not be read".to_owned(),
            Category::Eof => "it ends too early".to_owned(),
            Category::Syntax => "it is not JSON".to_owned(),
            Category::Data => {
                let message = text.split(" at line ").next().unwrap_or_default();
                if message.starts_with("missing field") || message.starts_with("duplicate field") {
                    message.to_owned()
                } else {
                    "a field has the wrong type or value".to_owned()
                }
            }
        };
        Self::Json {
            what,
            line: error.line(),
            column: error.column(),
        }
    }
}
