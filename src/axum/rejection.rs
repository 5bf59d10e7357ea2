//! Why a webhook is refused, and the status each reason gets: the relay's status table.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::{Domain, DomainError, EventError};
use crate::encoding::EncodingError;
use crate::header_error::HeaderError;
use crate::message::MessageError;
use crate::verify::VerifyError;

/// Why [`VerifiedPowensWebhook`](super::VerifiedPowensWebhook) refused a request. As a
/// response: its [`status`](Self::status) and one `text/plain` line, its `Display`,
/// which never quotes a secret, a signature, a token or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The path names no domain or event (400).
    #[error("the path is not /powens-webhook/{{domain}}/{{event}}")]
    Path,
    /// The domain in the path is not a Powens domain (400).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The domain is not configured (404: fail closed).
    #[error("no webhook is configured for {0}")]
    UnknownDomain(Domain),
    /// The event in the path is not an event name (400).
    #[error(transparent)]
    Event(#[from] EventError),
    /// An unsupported `Content-Encoding` (415), or a gzip body that is corrupt (400) or
    /// decompresses past the limit (413).
    #[error(transparent)]
    Encoding(#[from] EncodingError),
    /// `Content-Length` is not a number (400).
    #[error("Content-Length is not a number")]
    ContentLength,
    /// The body is larger than the limit (413), announced or read.
    #[error("the body exceeds the relay's limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The signature headers are missing (401) or malformed (400).
    #[error(transparent)]
    Headers(#[from] HeaderError),
    /// A verify-mode domain got a request without HMAC headers (401).
    #[error("BI-Signature and BI-Signature-Date are required for this domain")]
    Unsigned,
    /// The body did not arrive in time (408).
    #[error("the body did not arrive within {secs} s")]
    BodyTimeout {
        /// The read time-out, in seconds.
        secs: u64,
    },
    /// The body could not be read (400).
    #[error("the body could not be read")]
    BodyUnreadable,
    /// The body is empty (400).
    #[error("the webhook body is empty")]
    EmptyBody,
    /// The signature does not match, or the date is stale or ahead (401).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The message cannot be built: the body is not UTF-8 (400).
    #[error(transparent)]
    Message(#[from] MessageError),
}

impl WebhookRejection {
    /// The HTTP status this refusal gets (the relay's status table).
    pub fn status(&self) -> StatusCode {
        match self {
            Self::UnknownDomain(_) => StatusCode::NOT_FOUND,
            Self::Encoding(EncodingError::Unsupported) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Encoding(EncodingError::TooLarge { .. }) | Self::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::Headers(
                HeaderError::NoAuthentication
                | HeaderError::MissingSignature
                | HeaderError::MissingSignatureDate,
            )
            | Self::Unsigned
            | Self::Verify(_) => StatusCode::UNAUTHORIZED,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        plain_text(self.status(), &self.to_string(), None)
    }
}

/// A `text/plain` response of one line, with `Retry-After` when given: every refusal of
/// the relay and the extractor has this shape.
pub(crate) fn plain_text(status: StatusCode, line: &str, retry_after: Option<u32>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{line}\n"),
    )
        .into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_relay_table() {
        let cases = [
            (WebhookRejection::Path, 400),
            (WebhookRejection::ContentLength, 400),
            (WebhookRejection::EmptyBody, 400),
            (WebhookRejection::BodyUnreadable, 400),
            (WebhookRejection::Encoding(EncodingError::Corrupt), 400),
            (
                WebhookRejection::Headers(HeaderError::SignatureNotBase64),
                400,
            ),
            (
                WebhookRejection::Headers(HeaderError::NoAuthentication),
                401,
            ),
            (
                WebhookRejection::Headers(HeaderError::MissingSignature),
                401,
            ),
            (WebhookRejection::Unsigned, 401),
            (
                WebhookRejection::UnknownDomain(Domain::parse("a.biapi.pro").unwrap()),
                404,
            ),
            (WebhookRejection::BodyTimeout { secs: 30 }, 408),
            (WebhookRejection::TooLarge { limit: 1 }, 413),
            (
                WebhookRejection::Encoding(EncodingError::TooLarge { limit: 1 }),
                413,
            ),
            (WebhookRejection::Encoding(EncodingError::Unsupported), 415),
        ];
        for (rejection, status) in cases {
            assert_eq!(rejection.status().as_u16(), status, "{rejection}");
        }
    }
}
