//! A minimal Powens-like sender: signs a body as Powens does and POSTs it to a relay
//! (`powens-relay send`, tests, the load harness).

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::secret::Secret;
use crate::signature::{SignedPrefix, sign};

/// Where to send: a parsed `http://host:port/path` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    authority: String,
    path: String,
}

impl Target {
    /// Parses `url`, appending `/event` to its path when given. Only `http://` is
    /// supported: the relay sits behind a TLS-terminating proxy, and this is a test tool.
    ///
    /// # Errors
    /// [`SendError::InvalidUrl`], [`SendError::NotHttp`] or [`SendError::NoHost`].
    pub(crate) fn parse(url: &str, event: Option<&str>) -> Result<Self, SendError> {
        let uri: Uri = url.parse().map_err(|_| SendError::InvalidUrl)?;
        if uri.scheme_str() != Some("http") {
            return Err(SendError::NotHttp);
        }
        let authority = uri.authority().ok_or(SendError::NoHost)?;
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let mut path = uri.path().trim_end_matches('/').to_owned();
        if let Some(event) = event {
            path.push('/');
            path.push_str(event);
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(Self {
            authority: format!("{host}:{port}"),
            path,
        })
    }
}

/// The relay's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendResponse {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The response body, as text.
    pub(crate) body: String,
}

/// Why a webhook could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SendError {
    /// The URL cannot be parsed.
    #[error("invalid URL: not a valid URL")]
    InvalidUrl,
    /// The URL is not `http://`.
    #[error("invalid URL: only http:// URLs are supported")]
    NotHttp,
    /// The URL names no host.
    #[error("invalid URL: the URL has no host")]
    NoHost,
    /// The connection failed.
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The request could not be built, or the HTTP exchange failed.
    #[error("HTTP error: {0}")]
    Http(#[source] HttpError),
}

/// An error of the HTTP client, as text: which dependency reported it is not part of
/// this crate's API.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct HttpError(Box<dyn std::error::Error + Send + Sync>);

fn http(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> SendError {
    SendError::Http(HttpError(error.into()))
}

/// The `BI-Signature-Date` Powens would send at `at`: UTC, microseconds, `Z`.
pub(crate) fn signature_date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Builds the signed request Powens would send: `POST path`, JSON content type,
/// `BI-Signature-Date` = `date`, `BI-Signature` over `POST.path.date.body`.
///
/// # Errors
/// [`SendError::Http`] if a header cannot be built.
pub(crate) fn signed_request(
    target: &Target,
    body: Bytes,
    secret: &Secret,
    date: &str,
) -> Result<Request<Full<Bytes>>, SendError> {
    let signature = sign(
        secret,
        &SignedPrefix::new("POST", &target.path, date),
        &body,
    )
    .to_base64();
    Request::post(target.path.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header("BI-Signature-Date", date)
        .header("BI-Signature", signature)
        .body(Full::new(body))
        .map_err(http)
}

/// Signs `body` with `secret` (date = now) and POSTs it to `target` on a new connection.
///
/// # Errors
/// [`SendError`].
pub(crate) async fn send(
    target: &Target,
    body: Vec<u8>,
    secret: &Secret,
) -> Result<SendResponse, SendError> {
    let request = signed_request(
        target,
        Bytes::from(body),
        secret,
        &signature_date(Utc::now()),
    )?;
    let stream = TcpStream::connect(&target.authority)
        .await
        .map_err(|source| SendError::Connect {
            authority: target.authority.clone(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(http)?
        .to_bytes();
    driver.abort();
    Ok(SendResponse {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse(
            "http://127.0.0.1:8080/powens-webhook/a.biapi.pro",
            Some("USER_SYNCED"),
        )
        .unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/powens-webhook/a.biapi.pro/USER_SYNCED");
        let t = Target::parse("http://localhost/hooks/powens-webhook/a.biapi.pro/E", None).unwrap();
        assert_eq!(t.authority, "localhost:80");
        assert_eq!(t.path, "/hooks/powens-webhook/a.biapi.pro/E");
        assert!(matches!(
            Target::parse("https://x/y", None),
            Err(SendError::NotHttp)
        ));
        assert!(matches!(
            Target::parse("not a url", None),
            Err(SendError::InvalidUrl)
        ));
        assert!(matches!(
            Target::parse("/only/a/path", None),
            Err(SendError::NotHttp | SendError::NoHost)
        ));
    }

    #[test]
    fn dates_look_like_powens_dates() {
        use chrono::TimeZone;
        let at = Utc.with_ymd_and_hms(2022, 6, 27, 11, 8, 52).unwrap();
        assert_eq!(signature_date(at), "2022-06-27T11:08:52.000000Z");
    }
}
