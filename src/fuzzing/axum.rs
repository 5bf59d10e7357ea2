//! The extractor's parsers.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use http::{HeaderMap, HeaderValue, header::CONTENT_ENCODING};

use crate::encoding::{ContentEncoding, EncodingError, gunzip};

/// A `Content-Encoding` header and a gzip body: the first byte sets the limit.
pub fn content_encoding(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let limit = usize::from(selector) * 64;
    let (value, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };

    if let Ok(value) = HeaderValue::from_bytes(value) {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_ENCODING, value.clone());
        let name = String::from_utf8_lossy(value.as_bytes())
            .trim_matches([' ', '\t'])
            .to_ascii_lowercase();
        match ContentEncoding::from_headers(&headers) {
            Ok(ContentEncoding::Gzip) => assert!(name == "gzip" || name == "x-gzip", "{name:?}"),
            Ok(ContentEncoding::Identity) => assert_eq!(name, "identity"),
            Err(EncodingError::Unsupported) => {
                assert!(!["gzip", "x-gzip", "identity"].contains(&name.as_str()))
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    match gunzip(body, limit) {
        Ok(out) => {
            assert!(out.len() <= limit);
            assert_eq!(gunzip(body, limit * 2 + 1).as_ref(), Ok(&out));
        }
        Err(EncodingError::TooLarge { limit: l }) => assert_eq!(l, limit),
        Err(EncodingError::Corrupt) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }

    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(body).unwrap();
    let compressed = encoder.finish().unwrap();
    assert_eq!(gunzip(&compressed, body.len()).as_deref(), Ok(body));
    if let Some(under) = body.len().checked_sub(1) {
        assert_eq!(
            gunzip(&compressed, under),
            Err(EncodingError::TooLarge { limit: under })
        );
    }
}
