//! Properties of the listener's parsers: the packed-state decoder against an encoder
//! written from Powens' format, and `full_url` checking, over generated input.

use super::{FullUrl, Query, decode_packed};
use proptest::prelude::*;
use url::Url;

const ALPHABET: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.";

fn char_of(n: u32) -> char {
    ALPHABET[n as usize] as char
}

/// The pieces of a packed state and the URL they stand for.
fn packed_state() -> impl Strategy<Value = (String, String, bool)> {
    (
        any::<bool>(), // http
        any::<bool>(), // with fragment
        prop_oneof![
            Just(None),
            Just(Some(3158_u32)),
            (1_u32..65_536).prop_map(Some)
        ],
        prop::sample::select(vec![
            (0_u32, ""),
            (2, "-sandbox.biapi.pro"),
            (3, ".biapi.pro"),
        ]),
        prop::sample::select(vec![
            (1_u32, "/"),
            (2, "/webauth/resume"),
            (3, "/2.0/webauth/resume"),
        ]),
        "[a-z][a-z0-9]{0,12}",
        prop::option::of("[a-zA-Z0-9_.-]{0,12}"),
    )
        .prop_map(
            |(http, fragment, port, (suffix_i, suffix), (path_i, path), host, state)| {
                let mut flags = 0;
                let mut encoded_port = String::new();
                match port {
                    Some(3158) => flags |= 0x03,
                    Some(p) => {
                        flags |= 0x01;
                        encoded_port = [p >> 12, (p >> 6) & 63, p & 63]
                            .map(char_of)
                            .iter()
                            .collect();
                    }
                    None => {}
                }
                if fragment {
                    flags |= 0x04;
                }
                if http {
                    flags |= 0x08;
                }
                let mut packed = format!(
                    "B1{}{encoded_port}{}{}{host}",
                    char_of(flags),
                    char_of(suffix_i),
                    char_of(path_i)
                );
                let scheme = if http { "http" } else { "https" };
                let default = if http { 80 } else { 443 };
                let shown_port = match port {
                    Some(p) if p != default => format!(":{p}"),
                    _ => String::new(),
                };
                let mut url = format!("{scheme}://{host}{suffix}{shown_port}{path}");
                if let Some(state) = state {
                    packed.push('_');
                    packed.push_str(&state);
                    url.push_str("?state=");
                    url.push_str(&state);
                }
                (packed, url, fragment)
            },
        )
}

proptest! {
    /// Every state packed from Powens' format decodes to the URL it packs.
    #[test]
    fn packed_states_decode_to_what_they_pack((packed, url, fragment) in packed_state()) {
        let decoded = decode_packed(&packed).expect("a valid packed state");
        prop_assert_eq!(decoded.url, Url::parse(&url).unwrap());
        prop_assert_eq!(decoded.with_fragment, fragment);
    }

    /// Any text: the decoder answers without panicking, and what it decodes is http(s).
    #[test]
    fn any_text_decodes_to_nothing_or_to_http(text in "B1[0-9a-zA-Z._-]{0,24}|\\PC{0,32}") {
        if let Some(decoded) = decode_packed(&text) {
            prop_assert!(matches!(decoded.url.scheme(), "http" | "https"));
        }
    }

    /// A `full_url` accepted is on the listener's origin and under its path, whatever
    /// the text.
    #[test]
    fn accepted_full_urls_point_at_the_listener(
        text in prop_oneof![
            "https://listener\\.example\\.org/teal/[a-z&=%]{0,20}(\\?[a-z=&%]{0,20})?(#[a-z=&]{0,20})?",
            "[a-z]{2,6}://[a-z.@:]{1,30}/[a-z/&=?#%]{0,30}",
            "\\PC{0,40}",
        ]
    ) {
        let public = Url::parse("https://listener.example.org/teal/").unwrap();
        if let Ok(full) = FullUrl::parse(&text, &public) {
            prop_assert_eq!(full.url.origin(), public.origin());
            prop_assert!(full.url.path().starts_with("/teal/"));
        }
    }

    /// A query's last value wins, and decoding never panics.
    #[test]
    fn the_last_value_wins(values in prop::collection::vec("[a-z0-9]{0,8}", 1..10)) {
        let text: Vec<String> = values.iter().map(|v| format!("state={v}")).collect();
        let query = Query::parse(&text.join("&")).unwrap();
        prop_assert_eq!(query.get("state"), values.last().map(String::as_str));
    }
}
