//! OpenID CIBA ping and push notifications (CIBA Core 1.0 §10): the body, parsed once
//! into one of three shapes, and the message published for it.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::headers::BearerToken;
use crate::message::{OpenIdCibaCallbackMessage, OpenIdCibaPushError, OpenIdCibaPushToken};
use crate::time::IsoDateTime;

/// Longest `expires_in` accepted: ten years. More is a mistake, and keeps the date in
/// range.
const MAX_EXPIRES_IN: i64 = 10 * 366 * 86_400;

/// A notification from the OpenID provider. Unknown fields are ignored (CIBA §10.2).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum CibaNotification {
    /// Ping mode: the client should fetch the tokens.
    Ping {
        /// The authentication request id.
        auth_req_id: String,
    },
    /// Push mode, success: the tokens.
    PushToken {
        /// The authentication request id.
        auth_req_id: String,
        /// The access token.
        access_token: String,
        /// Its type, e.g. `Bearer`.
        token_type: String,
        /// The refresh token, if the provider gave one (CIBA: optional).
        refresh_token: Option<String>,
        /// Seconds until the access token expires.
        expires_in: u32,
        /// The ID token (CIBA: required for a push success).
        id_token: String,
    },
    /// Push mode, failure.
    PushError {
        /// The authentication request id.
        auth_req_id: String,
        /// `access_denied`, `expired_token`, `transaction_failed`…
        error: String,
        /// A description, if given.
        error_description: Option<String>,
    },
}

impl std::fmt::Debug for CibaNotification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens never printed.
        match self {
            Self::Ping { auth_req_id } => write!(f, "Ping({auth_req_id:?})"),
            Self::PushToken { auth_req_id, .. } => write!(f, "PushToken({auth_req_id:?})"),
            Self::PushError {
                auth_req_id, error, ..
            } => write!(f, "PushError({auth_req_id:?}, {error:?})"),
        }
    }
}

/// Why a notification's body is refused (TeaL's `Invalid payload`). Never quotes it:
/// it may hold tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Invalid payload")]
pub(crate) struct InvalidPayload;

#[derive(Deserialize)]
struct Body {
    auth_req_id: String,
    access_token: Option<String>,
    token_type: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    id_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CibaNotification {
    /// Parses a notification body (JSON, whatever the `Content-Type`): an `error` makes
    /// it a push error, an `access_token` a push success (`token_type`, `expires_in` and
    /// `id_token` then required), else a ping.
    ///
    /// # Errors
    /// [`InvalidPayload`].
    pub(crate) fn parse(body: &[u8]) -> Result<Self, InvalidPayload> {
        let body: Body = serde_json::from_slice(body).map_err(|_| InvalidPayload)?;
        if body.auth_req_id.is_empty() || body.auth_req_id.len() > 255 {
            return Err(InvalidPayload);
        }
        if let Some(error) = body.error {
            return Ok(Self::PushError {
                auth_req_id: body.auth_req_id,
                error,
                error_description: body.error_description,
            });
        }
        let Some(access_token) = body.access_token else {
            return Ok(Self::Ping {
                auth_req_id: body.auth_req_id,
            });
        };
        let expires_in = body
            .expires_in
            .filter(|s| (0..=MAX_EXPIRES_IN).contains(s))
            .and_then(|s| u32::try_from(s).ok())
            .ok_or(InvalidPayload)?;
        Ok(Self::PushToken {
            auth_req_id: body.auth_req_id,
            access_token,
            token_type: body.token_type.ok_or(InvalidPayload)?,
            refresh_token: body.refresh_token,
            expires_in,
            id_token: body.id_token.ok_or(InvalidPayload)?,
        })
    }

    /// The authentication request id: the routing key.
    pub(crate) fn auth_req_id(&self) -> &str {
        match self {
            Self::Ping { auth_req_id }
            | Self::PushToken { auth_req_id, .. }
            | Self::PushError { auth_req_id, .. } => auth_req_id,
        }
    }

    /// TeaL's message, received at `now` with the notification's bearer token.
    /// `push_token.expires_at` is `now + expires_in`; an absent refresh token is written
    /// as `""`, since TeaL's consumers require the field to be text.
    pub(crate) fn into_message(
        self,
        bearer: &BearerToken,
        now: DateTime<Utc>,
    ) -> OpenIdCibaCallbackMessage {
        let mut message = OpenIdCibaCallbackMessage {
            timestamp: IsoDateTime::naive_utc(now),
            request_id: self.auth_req_id().to_owned(),
            access_token: Some(bearer.as_str().to_owned()),
            push_token: None,
            push_error: None,
        };
        match self {
            Self::Ping { .. } => {}
            Self::PushToken {
                access_token,
                token_type,
                refresh_token,
                expires_in,
                id_token,
                ..
            } => {
                let expires_at = now + TimeDelta::seconds(i64::from(expires_in));
                message.push_token = Some(OpenIdCibaPushToken {
                    access_token,
                    token_type,
                    refresh_token: refresh_token.unwrap_or_default(),
                    expires_at: IsoDateTime::aware(expires_at.fixed_offset()),
                    id_token: Some(id_token),
                });
            }
            Self::PushError {
                error,
                error_description,
                ..
            } => {
                message.push_error = Some(OpenIdCibaPushError {
                    error,
                    error_description,
                });
            }
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_three_shapes_parse_and_unknown_fields_are_ignored() {
        assert_eq!(
            CibaNotification::parse(br#"{"auth_req_id":"r-1","extra":1}"#),
            Ok(CibaNotification::Ping {
                auth_req_id: "r-1".into()
            })
        );
        let push = br#"{"auth_req_id":"r-2","access_token":"AT","token_type":"Bearer","expires_in":3600,"id_token":"ID","ext":true}"#;
        let Ok(CibaNotification::PushToken {
            refresh_token,
            expires_in,
            ..
        }) = CibaNotification::parse(push)
        else {
            panic!("not a push token");
        };
        assert_eq!((refresh_token, expires_in), (None, 3600));
        let error = br#"{"auth_req_id":"r-3","error":"access_denied"}"#;
        assert!(matches!(
            CibaNotification::parse(error),
            Ok(CibaNotification::PushError {
                error_description: None,
                ..
            })
        ));
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"auth_req_id":""}"#,
            br#"{"auth_req_id":5}"#,
            br#"{"auth_req_id":"r","access_token":"AT","token_type":"Bearer","expires_in":3600}"#,
            br#"{"auth_req_id":"r","access_token":"AT","token_type":"Bearer","id_token":"I"}"#,
            br#"{"auth_req_id":"r","access_token":"AT","token_type":"Bearer","expires_in":-1,"id_token":"I"}"#,
            br#"{"auth_req_id":"r","access_token":"AT","token_type":"Bearer","expires_in":1e99,"id_token":"I"}"#,
        ] {
            assert_eq!(CibaNotification::parse(bad), Err(InvalidPayload), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn messages_carry_the_bearer_and_the_expiry_date() {
        let now = Utc.with_ymd_and_hms(2024, 3, 4, 9, 0, 2).unwrap();
        let bearer = BearerToken::parse_authorization("Bearer NOTIF-Token_1").unwrap();
        let push = br#"{"auth_req_id":"req-1","access_token":"at-1","token_type":"Bearer","refresh_token":"rt-1","expires_in":3600,"id_token":"id-1"}"#;
        let message = CibaNotification::parse(push)
            .unwrap()
            .into_message(&bearer, now);
        assert_eq!(message.request_id, "req-1");
        assert_eq!(message.access_token.as_deref(), Some("NOTIF-Token_1"));
        let token = message.push_token.unwrap();
        assert_eq!(token.expires_at.to_utc(), now + TimeDelta::hours(1));
        assert_eq!(token.expires_at.to_string(), "2024-03-04T10:00:02+00:00");
        assert_eq!(token.refresh_token, "rt-1");
        assert!(message.push_error.is_none());
    }
}
