//! The redirect fallback (TeaL's `POWENS_REDIRECT_FALLBACK`): a state the store does not
//! know may carry its own redirect, as base64 JSON (`{"redirect_uri", "state"?}`) or in
//! Powens' packed format. Anyone can write such a state, so the relay follows one only
//! to a host of `redirect_fallback_hosts` (TeaL followed any: an open redirect).
//!
//! The packed format: `B1`, a flags character, a 3-character port when the flags say
//! so, a host-suffix character, a path character, the host, and `_<state>` optionally.
//! Each character is a 6-bit number in the alphabet `0-9a-zA-Z-.`. Flags: `0x01` a
//! non-standard port (`0x03`: the default one, 3158; `0x01` alone: 3 characters follow),
//! `0x04` gather the fragment, `0x08` http (else https); `0x10` and `0x20` are refused.
//! Host suffixes: 0 none, 2 `-sandbox.biapi.pro`, 3 `.biapi.pro`. Paths: 1 `/`,
//! 2 `/webauth/resume`, 3 `/2.0/webauth/resume`.

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use url::Url;

use super::query::Query;

const ALPHABET: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.";
const DEFAULT_NONSTANDARD_PORT: u16 = 3158;

/// Where a state decoded by the fallback sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FallbackRedirect {
    /// The final redirect URL, as decoded (before the callback's parameters are added).
    pub(crate) url: Url,
    /// Whether the fragment page must be shown first.
    pub(crate) with_fragment: bool,
}

/// The value of one alphabet character.
fn digit(c: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&a| a == c)
        .and_then(|i| u32::try_from(i).ok())
}

/// The entry of `table` that the first character of `rest` numbers, and what follows.
fn pick<'r>(rest: &'r [u8], table: &[(u32, &'static str)]) -> Option<(&'static str, &'r [u8])> {
    let (&c, rest) = rest.split_first()?;
    let index = digit(c)?;
    let (_, value) = table.iter().find(|(i, _)| *i == index)?;
    Some((value, rest))
}

/// Decodes a Powens packed state; `None` when it is not one.
pub(crate) fn decode_packed(state: &str) -> Option<FallbackRedirect> {
    let rest = state.strip_prefix("B1")?.as_bytes();
    if !rest.iter().all(|&c| c == b'_' || digit(c).is_some()) {
        return None;
    }
    let (&flags_char, mut rest) = rest.split_first()?;
    let flags = digit(flags_char)?;
    if flags & 0x30 != 0 {
        return None;
    }
    let mut port = match flags & 0x03 {
        0x01 => {
            let (raw, after) = rest.split_at_checked(3)?;
            rest = after;
            let mut value = 0u32;
            for &c in raw {
                if c == b'_' {
                    return None;
                }
                value = value * 64 + digit(c)?;
            }
            Some(u16::try_from(value).ok().filter(|p| *p != 0)?)
        }
        0x03 => Some(DEFAULT_NONSTANDARD_PORT),
        _ => None,
    };
    let (suffix, rest) = pick(
        rest,
        &[(0, ""), (2, "-sandbox.biapi.pro"), (3, ".biapi.pro")],
    )?;
    let (path, rest) = pick(
        rest,
        &[(1, "/"), (2, "/webauth/resume"), (3, "/2.0/webauth/resume")],
    )?;
    let rest = std::str::from_utf8(rest).ok()?;
    let (host, inner_state) = match rest.split_once('_') {
        Some((host, state)) => (host, Some(state)),
        None => (rest, None),
    };
    if host.is_empty() {
        return None;
    }
    let http = flags & 0x08 != 0;
    if port == Some(if http { 80 } else { 443 }) {
        port = None;
    }
    let scheme = if http { "http" } else { "https" };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let query = inner_state
        .map(|s| format!("?state={s}"))
        .unwrap_or_default();
    let url = Url::parse(&format!("{scheme}://{host}{suffix}{port}{path}{query}")).ok()?;
    Some(FallbackRedirect {
        url,
        with_fragment: flags & 0x04 != 0,
    })
}

/// Decodes a base64 JSON state (`{"redirect_uri": …, "state"?: …}`, padding optional,
/// as Python's lenient decoder reads it); `None` when it is not one or not http(s).
pub(crate) fn decode_base64_json(state: &str) -> Option<FallbackRedirect> {
    let engine = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(state.trim_end_matches('=')).ok()?;
    #[derive(serde::Deserialize)]
    struct Encoded {
        redirect_uri: String,
        state: Option<String>,
    }
    let encoded: Encoded = serde_json::from_slice(&bytes).ok()?;
    let mut url = Url::parse(&encoded.redirect_uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    if let Some(inner) = encoded.state {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "state")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("state", &inner);
    }
    Some(FallbackRedirect {
        url,
        with_fragment: false,
    })
}

/// The fallback for `state`: base64 JSON, else packed, followed only to a host of
/// `allowed_hosts` (compared without regard to case). `None` for an unknown state.
pub(crate) fn fallback(state: &str, allowed_hosts: &[String]) -> Option<FallbackRedirect> {
    let redirect = decode_base64_json(state).or_else(|| decode_packed(state))?;
    let host = redirect.url.host_str()?;
    allowed_hosts
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(host))
        .then_some(redirect)
}

/// The URL the browser is sent to for a fallback: the callback's parameters but
/// `state`, overlaid by the final URL's own, and `auth_type` = `web` when the request
/// had a `Referer`, else `app` (TeaL's behaviour).
pub(crate) fn final_url(redirect: &Url, callback: &Query, has_referer: bool) -> Url {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: &str| match params.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value.to_owned(),
        None => params.push((name.to_owned(), value.to_owned())),
    };
    for (name, value) in callback.pairs().iter().filter(|(n, _)| n != "state") {
        set(name, value);
    }
    for (name, value) in redirect.query_pairs() {
        set(&name, &value);
    }
    set("auth_type", if has_referer { "web" } else { "app" });
    let mut url = redirect.clone();
    url.query_pairs_mut().clear().extend_pairs(params);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(state: &str) -> Option<(String, bool)> {
        decode_packed(state).map(|r| (r.url.to_string(), r.with_fragment))
    }

    #[test]
    fn packed_states_decode_as_powens_packs_them() {
        let cases = [
            ("B1001www.example.org", "https://www.example.org/", false),
            (
                "B1021budgea_abc",
                "https://budgea-sandbox.biapi.pro/?state=abc",
                false,
            ),
            (
                "B1033budgea",
                "https://budgea.biapi.pro/2.0/webauth/resume",
                false,
            ),
            (
                "B1b02localhost",
                "http://localhost:3158/webauth/resume",
                false,
            ),
            ("B110ji01localhost", "https://localhost:1234/", false),
            (
                "B1401app.example.org_s",
                "https://app.example.org/?state=s",
                true,
            ),
            // The scheme's own port is dropped.
            ("B1901g01localhost", "http://localhost/", false),
        ];
        for (state, url, fragment) in cases {
            assert_eq!(packed(state), Some((url.to_owned(), fragment)), "{state}");
        }
        for bad in [
            "",
            "B1",
            "B2001x",
            "B1g01x",
            "B1w01x",
            "B1011",
            "B1041x",
            "B1004x",
            "B10_1x",
            "B1001x y",
            "B1001é",
            "B11001x",
            "B1100001x",
        ] {
            assert_eq!(packed(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_json_states_decode_with_or_without_padding() {
        use base64::engine::general_purpose::STANDARD as B64;
        let json = r#"{"redirect_uri":"https://app.example.org/done?x=1&state=old","state":"new"}"#;
        let encoded = B64.encode(json);
        for state in [encoded.clone(), encoded.trim_end_matches('=').to_owned()] {
            let redirect = decode_base64_json(&state).unwrap();
            assert_eq!(
                redirect.url.as_str(),
                "https://app.example.org/done?x=1&state=new"
            );
        }
        for bad in [
            B64.encode(r#"{"state":"x"}"#),
            B64.encode(r#"{"redirect_uri":"javascript:alert(1)"}"#),
            B64.encode("not json"),
            "!!!".to_owned(),
        ] {
            assert_eq!(decode_base64_json(&bad), None, "{bad}");
        }
    }

    #[test]
    fn the_fallback_follows_only_allowed_hosts_and_carries_the_callback_parameters() {
        let allowed = vec!["budgea.biapi.pro".to_owned()];
        assert!(fallback("B1033budgea", &allowed).is_some());
        assert_eq!(fallback("B1001evil.example.org", &allowed), None);
        assert_eq!(fallback("B1033budgea", &[]), None);
        let redirect = fallback("B1033budgea_st", &allowed).unwrap();
        let callback = Query::parse("code=c1&state=B1033budgea_st&x=from-callback").unwrap();
        let other = Url::parse("https://a.example/r?x=final").unwrap();
        let cases = [
            (
                &redirect.url,
                true,
                "https://budgea.biapi.pro/2.0/webauth/resume?code=c1&x=from-callback&state=st&auth_type=web",
            ),
            (
                &other,
                false,
                "https://a.example/r?code=c1&x=final&auth_type=app",
            ),
        ];
        for (target, referer, expected) in cases {
            assert_eq!(final_url(target, &callback, referer).as_str(), expected);
        }
    }
}
