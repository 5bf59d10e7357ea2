//! The path prefixes Powens may have signed, besides the one put back: the configured
//! prefix's shorter forms and none, the prefix a proxy says it stripped (its headers),
//! the caller's hints and the usual ones.

use http::HeaderMap;

/// Prefixes reverse proxies are often set up to strip, tried when nothing says better.
const USUAL: [&str; 6] = [
    "/hooks",
    "/webhooks",
    "/webhook",
    "/powens",
    "/teal",
    "/api",
];
/// Headers in which proxies give the prefix they stripped.
const PREFIX_HEADERS: [&str; 1] = ["x-forwarded-prefix"];
/// Headers in which proxies give the path as they received it.
const ORIGINAL_PATH_HEADERS: [&str; 5] = [
    "x-forwarded-uri",
    "x-original-uri",
    "x-original-url",
    "x-envoy-original-path",
    "x-rewrite-url",
];
/// The longest prefix considered: a header is untrusted input.
const MAX_PREFIX: usize = 200;
/// The most hints taken from headers.
const MAX_HINTS: usize = 8;
/// The most prefixes tried.
const MAX_CANDIDATES: usize = 24;

/// Whether `prefix` is a plain `/path` (no trailing slash, visible ASCII, no query,
/// fragment or escape) of reasonable length: the shape `public_path_prefix` takes.
fn plain(prefix: &str) -> bool {
    prefix.len() <= MAX_PREFIX
        && prefix.starts_with('/')
        && !prefix.ends_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%'))
}

/// The prefixes the request's headers say a proxy stripped from `path` (the path
/// received): `X-Forwarded-Prefix`, or the original path of `X-Forwarded-Uri`,
/// `X-Original-URI` and the like when it ends with `path`. Unchecked beyond their
/// length: [`candidates`] keeps only plain ones.
pub(crate) fn hints_from_headers(headers: &HeaderMap, path: &str) -> Vec<String> {
    let mut hints = Vec::new();
    let values = |name: &'static str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.len() <= 4 * MAX_PREFIX)
    };
    for name in PREFIX_HEADERS {
        for value in values(name) {
            hints.extend(value.split(',').map(|p| p.trim().to_owned()));
        }
    }
    for name in ORIGINAL_PATH_HEADERS {
        for value in values(name) {
            let original = value.split(['?', '#']).next().unwrap_or_default();
            if let Some(prefix) = original.strip_suffix(path) {
                hints.push(prefix.to_owned());
            }
        }
    }
    hints.truncate(MAX_HINTS);
    hints
}

/// The prefixes to try other than `configured` (which was): its shorter forms on
/// segment boundaries and none, then the plain `hints`, then the usual ones; each once.
pub(super) fn candidates(configured: &str, hints: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |prefix: &str| {
        if prefix != configured
            && (prefix.is_empty() || plain(prefix))
            && !found.iter().any(|p| p == prefix)
            && found.len() < MAX_CANDIDATES
        {
            found.push(prefix.to_owned());
        }
    };
    // "/a/b" put back, "/b" or "" signed: the proxy strips less than was thought.
    for (at, _) in configured.match_indices('/').skip(1) {
        add(&configured[at..]);
    }
    if !configured.is_empty() {
        add("");
    }
    for hint in hints {
        add(hint.trim_end_matches('/'));
    }
    for usual in USUAL {
        add(usual);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn candidates_shorten_the_configured_prefix_then_take_hints_then_the_usual() {
        let found = candidates("/a/b", &["/edge/".into(), "/bad?x".into(), "/a/b".into()]);
        assert_eq!(&found[..4], ["/b", "", "/edge", "/hooks"]);
        assert!(!found.iter().any(|p| p == "/a/b" || p.contains('?')));
        let none = candidates("", &[]);
        assert_eq!(none, USUAL);
        let long = "/x".repeat(MAX_PREFIX);
        assert!(!candidates("", &[long]).iter().any(|p| p.len() > MAX_PREFIX));
    }

    #[test]
    fn headers_name_the_stripped_prefix() {
        let path = "/powens-webhook/budgea.biapi.pro/USER_SYNCED";
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-prefix",
            HeaderValue::from_static("/edge, /inner"),
        );
        headers.insert(
            "x-original-uri",
            HeaderValue::from_str(&format!("/hooks{path}?a=1")).unwrap(),
        );
        headers.insert("x-forwarded-uri", HeaderValue::from_static("/elsewhere"));
        assert_eq!(
            hints_from_headers(&headers, path),
            ["/edge", "/inner", "/hooks"]
        );
    }
}
