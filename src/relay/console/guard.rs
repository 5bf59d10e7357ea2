//! What stands between the console and a browser: HTTP Basic authentication (user
//! `anonymous`, the password compared in constant time), headers that keep its pages
//! out of frames, caches and other origins' scripts, and the checks every change (a
//! POST) passes against cross-site requests.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::relay::basic_auth::{Password, Refused};

/// The challenge of a 401: browsers ask for the password.
const CHALLENGE: &str = "Basic realm=\"powens-relay console\", charset=\"UTF-8\"";

/// Scripts, styles and images from the console only, no inline script, no frame, no
/// form posted elsewhere.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      img-src 'self'; connect-src 'self'; form-action 'self'; \
                      frame-ancestors 'none'; base-uri 'none'";

/// Middleware: a request without the right credentials gets 401 and a challenge (and
/// a line in the log, at most what the dispatcher's refusals say: never the
/// credentials).
pub(crate) async fn authenticate(
    State(password): State<Arc<Password>>,
    request: Request,
    next: Next,
) -> Response {
    match password.check(request.headers(), None) {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            if refused != Refused::Missing {
                tracing::info!(reason = refused.label(), "console: credentials refused");
            }
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "the console needs its password (user anonymous)\n",
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(CHALLENGE),
            );
            response
        }
    }
}

/// Middleware: every answer is kept out of frames and caches, and its page may load
/// only the console's own assets.
pub(crate) async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Not no-referrer: with it, browsers send `Origin: null` on a form's POST,
        // which the cross-site check refuses.
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The token every form of the console carries: random, one per process. A page of
/// another site cannot read it, so cannot make a browser post a change with it.
#[derive(Clone)]
pub(crate) struct FormToken(String);

impl std::fmt::Debug for FormToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormToken([REDACTED])")
    }
}

impl FormToken {
    /// A new random token.
    pub(crate) fn new() -> Self {
        Self(format!("{:032x}", fastrand::u128(..)))
    }

    /// The token, for a form's hidden field.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a change was refused as cross-site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CrossSite {
    /// The browser says the request comes from another site.
    #[error("the request comes from another site (Sec-Fetch-Site: {0})")]
    FetchSite(&'static str),
    /// `Origin` is not the console's.
    #[error("the request comes from another origin")]
    Origin,
    /// The form's token is missing or wrong.
    #[error("the form's token is missing or out of date: reload the page and try again")]
    Token,
}

/// Checks a change (a POST): from the console itself, as the browser tells
/// (`Sec-Fetch-Site`, `Origin`: a browser too old to send them still needs the
/// token), carrying the form's `token`.
///
/// # Errors
/// [`CrossSite`].
pub(crate) fn check_change(
    headers: &HeaderMap,
    expected: &FormToken,
    token: Option<&str>,
) -> Result<(), CrossSite> {
    if let Some(site) = headers.get("sec-fetch-site") {
        match site.as_bytes() {
            b"same-origin" => {}
            b"same-site" => return Err(CrossSite::FetchSite("same-site")),
            b"none" => return Err(CrossSite::FetchSite("none")),
            _ => return Err(CrossSite::FetchSite("cross-site")),
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
        let own = origin
            .as_bytes()
            .strip_prefix(b"http://")
            .or_else(|| origin.as_bytes().strip_prefix(b"https://"));
        if own.is_none() || own != host {
            return Err(CrossSite::Origin);
        }
    }
    let token = token.unwrap_or_default().as_bytes();
    if bool::from(token.ct_eq(expected.0.as_bytes())) {
        Ok(())
    } else {
        Err(CrossSite::Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn a_change_needs_the_token_and_the_console_as_origin() {
        let token = FormToken::new();
        let good = token.as_str();
        let own = [
            ("host", "127.0.0.1:8082"),
            ("origin", "http://127.0.0.1:8082"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(check_change(&headers(&own), &token, Some(good)), Ok(()));
        // An old browser, or curl: no Origin, no Sec-Fetch-Site; the token decides.
        assert_eq!(check_change(&headers(&[]), &token, Some(good)), Ok(()));
        assert_eq!(
            check_change(&headers(&own), &token, Some("0")),
            Err(CrossSite::Token)
        );
        assert_eq!(
            check_change(&headers(&own), &token, None),
            Err(CrossSite::Token)
        );
        let other_site = [
            ("host", "127.0.0.1:8082"),
            ("origin", "https://evil.example"),
        ];
        assert_eq!(
            check_change(&headers(&other_site), &token, Some(good)),
            Err(CrossSite::Origin)
        );
        let null_origin = [("host", "127.0.0.1:8082"), ("origin", "null")];
        assert_eq!(
            check_change(&headers(&null_origin), &token, Some(good)),
            Err(CrossSite::Origin)
        );
        for (site, refused) in [
            ("cross-site", "cross-site"),
            ("same-site", "same-site"),
            ("none", "none"),
        ] {
            assert_eq!(
                check_change(&headers(&[("sec-fetch-site", site)]), &token, Some(good)),
                Err(CrossSite::FetchSite(refused))
            );
        }
        assert_ne!(FormToken::new().as_str(), good);
        assert!(!format!("{token:?}").contains(good));
    }
}
