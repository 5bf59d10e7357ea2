//! Query strings and the raw-callback's `full_url`: untrusted text from the browser,
//! parsed once into pairs and a checked URL.

use percent_encoding::percent_decode_str;
use url::Url;

/// Most parameters read from one query string or fragment; more is refused (a flood of
/// parameters costs memory and time for nothing).
pub(crate) const MAX_PARAMS: usize = 256;

/// Why a query string (or a fragment read as one) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum QueryError {
    /// More than [`MAX_PARAMS`] parameters.
    #[error("the query has more than 256 parameters")]
    TooMany,
    /// A percent-escape that does not decode to UTF-8.
    #[error("the query holds percent-escapes that are not UTF-8")]
    NotUtf8,
}

/// A query string's parameters, decoded (`+` is a space, `%XX` escapes), in order. A
/// name without `=` has an empty value, as in TeaL (`keep_blank_values`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses `text` (without the `?`).
    ///
    /// # Errors
    /// [`QueryError`].
    pub(crate) fn parse(text: &str) -> Result<Self, QueryError> {
        let mut pairs = Vec::new();
        for field in text.split('&').filter(|f| !f.is_empty()) {
            if pairs.len() == MAX_PARAMS {
                return Err(QueryError::TooMany);
            }
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self { pairs })
    }

    /// The value of `name`; the last one when it repeats (as TeaL).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, in order.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

fn decode(text: &str) -> Result<String, QueryError> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| QueryError::NotUtf8)
}

/// TeaL's `&` quirk: with no query string, a path holding `&` is split at the first
/// one, so that `/callback&state=x` reads as `/callback?state=x`.
pub(crate) fn split_ampersand<'a>(
    path: &'a str,
    query: Option<&'a str>,
) -> (&'a str, Option<&'a str>) {
    match (query.filter(|q| !q.is_empty()), path.split_once('&')) {
        (None, Some((path, query))) => (path, Some(query)),
        (query, _) => (path, query),
    }
}

/// Why a raw-callback's `full_url` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FullUrlError {
    /// Not an absolute http(s) URL.
    #[error("Invalid full URL")]
    Invalid,
    /// It points elsewhere than this listener (`public_url`): anyone knowing a state
    /// could otherwise publish a URL of their choosing.
    #[error("the full URL does not point at this listener")]
    Elsewhere,
    /// Its query or fragment is refused.
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// A raw-callback's `full_url`, the `&` quirk applied, checked to point at this listener,
/// with the state found in its query, else in its fragment (read as `k=v&…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FullUrl {
    /// The URL as published in the `CallbackMessage`.
    pub(crate) url: Url,
    /// The `state` parameter, if any (not yet validated: it may be empty).
    pub(crate) state: Option<String>,
}

impl FullUrl {
    /// Parses `text` and checks that it is under `public_url` (same scheme, host and
    /// port; path under its path).
    ///
    /// # Errors
    /// [`FullUrlError`].
    pub(crate) fn parse(text: &str, public_url: &Url) -> Result<Self, FullUrlError> {
        let mut url = Url::parse(text).map_err(|_| FullUrlError::Invalid)?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(FullUrlError::Invalid);
        }
        if url.query().is_none() && url.path().contains('&') {
            let path = url.path().to_owned();
            let (path, query) = split_ampersand(&path, None);
            url.set_query(query);
            url.set_path(path);
        }
        let same_origin = url.origin() == public_url.origin();
        if !same_origin || !url.path().starts_with(public_url.path()) {
            return Err(FullUrlError::Elsewhere);
        }
        let from_query = Query::parse(url.query().unwrap_or_default())?;
        let state = match from_query.get("state") {
            Some(state) => Some(state.to_owned()),
            None => Query::parse(url.fragment().unwrap_or_default())?
                .get("state")
                .map(str::to_owned),
        };
        Ok(Self { url, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_and_the_last_value_wins() {
        let query = Query::parse("state=a&code=x%20y+z&state=b&flag&&e=%C3%A9").unwrap();
        assert_eq!(query.get("state"), Some("b"));
        assert_eq!(query.get("code"), Some("x y z"));
        assert_eq!(query.get("flag"), Some(""));
        assert_eq!(query.get("e"), Some("é"));
        assert_eq!(query.get("missing"), None);
        assert_eq!(query.pairs().len(), 5);
        assert_eq!(Query::parse("a=%ff"), Err(QueryError::NotUtf8));
        assert_eq!(Query::parse(&"a=1&".repeat(257)), Err(QueryError::TooMany));
        assert!(Query::parse(&"a=1&".repeat(256)).is_ok());
    }

    #[test]
    fn the_ampersand_quirk_applies_only_without_a_query() {
        assert_eq!(
            split_ampersand("/callback&state=x", None),
            ("/callback", Some("state=x"))
        );
        assert_eq!(
            split_ampersand("/callback&state=x", Some("")),
            ("/callback", Some("state=x"))
        );
        assert_eq!(
            split_ampersand("/callback&a", Some("state=y")),
            ("/callback&a", Some("state=y"))
        );
        assert_eq!(split_ampersand("/callback", None), ("/callback", None));
    }

    #[test]
    fn full_urls_must_point_at_this_listener() {
        let public = Url::parse("https://listener.example.org/teal/").unwrap();
        let parsed = FullUrl::parse(
            "https://listener.example.org/teal/callback?code=1&state=s-1#ignored",
            &public,
        )
        .unwrap();
        assert_eq!(parsed.state.as_deref(), Some("s-1"));
        let fragment = FullUrl::parse(
            "https://listener.example.org/teal/callback#access_token=t&state=s-2",
            &public,
        )
        .unwrap();
        assert_eq!(fragment.state.as_deref(), Some("s-2"));
        let quirk = FullUrl::parse(
            "https://listener.example.org/teal/callback&state=s-3",
            &public,
        )
        .unwrap();
        assert_eq!(quirk.state.as_deref(), Some("s-3"));
        assert_eq!(
            quirk.url.as_str(),
            "https://listener.example.org/teal/callback?state=s-3"
        );
        assert_eq!(
            FullUrl::parse("https://listener.example.org/teal/callback", &public)
                .unwrap()
                .state,
            None
        );
        let refused = [
            (
                FullUrlError::Elsewhere,
                &[
                    "https://evil.example.org/teal/callback?state=s",
                    "http://listener.example.org/teal/callback?state=s",
                    "https://listener.example.org:8443/teal/callback?state=s",
                    "https://listener.example.org/other/callback?state=s",
                    "https://listener.example.org.evil.org/teal/callback?state=s",
                ][..],
            ),
            (
                FullUrlError::Invalid,
                &[
                    "",
                    "callback?state=s",
                    "javascript:alert(1)",
                    "ftp://listener.example.org/teal/",
                ],
            ),
        ];
        for (error, texts) in refused {
            for text in texts {
                assert_eq!(FullUrl::parse(text, &public), Err(error), "{text}");
            }
        }
        assert_eq!(
            FullUrl::parse(
                "https://listener.example.org/teal/callback?state=%ff",
                &public
            ),
            Err(FullUrlError::Query(QueryError::NotUtf8))
        );
    }
}
