//! `Content-Encoding` of webhook bodies: none or gzip, decompressed within a limit.
//!
//! Untrusted input: the header is parsed into [`ContentEncoding`] once, and [`gunzip`]
//! never produces more than its limit, however small the compressed body (a "gzip
//! bomb" of a few kilobytes can expand to gigabytes).

use std::io::Read;

use http::HeaderMap;
use http::header::CONTENT_ENCODING;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentEncoding {
    /// No `Content-Encoding`, or `identity`.
    Identity,
    /// `gzip` (or its old alias `x-gzip`), one layer.
    Gzip,
}

/// Why a body cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodingError {
    /// An encoding other than gzip, several layers of encoding, or an unreadable header.
    /// The value is not quoted: it comes from the client.
    #[error("unsupported Content-Encoding: only gzip (or none) is accepted")]
    Unsupported,
    /// The decompressed body is larger than the limit.
    #[error("the decompressed body exceeds the relay's limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not valid gzip (bad header, bad checksum, truncated, trailing bytes).
    #[error("the body is not valid gzip")]
    Corrupt,
}

impl ContentEncoding {
    /// Reads the `Content-Encoding` header(s). Names are case-insensitive and may be
    /// surrounded by spaces; a list (`gzip, gzip`) or any other encoding is refused.
    ///
    /// # Errors
    /// [`EncodingError::Unsupported`].
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, EncodingError> {
        let mut values = headers.get_all(CONTENT_ENCODING).iter();
        let Some(value) = values.next() else {
            return Ok(Self::Identity);
        };
        if values.next().is_some() {
            return Err(EncodingError::Unsupported);
        }
        let name = value
            .to_str()
            .map_err(|_| EncodingError::Unsupported)?
            .trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            Ok(Self::Gzip)
        } else if name.eq_ignore_ascii_case("identity") {
            Ok(Self::Identity)
        } else {
            Err(EncodingError::Unsupported)
        }
    }
}

/// Decompresses a gzip body (one or more members, as RFC 1952 allows), producing at most
/// `limit` bytes.
///
/// # Errors
/// [`EncodingError::TooLarge`] as soon as the output would pass `limit` (decompression
/// stops there), [`EncodingError::Corrupt`] for anything that is not valid gzip.
pub(crate) fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, EncodingError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(limit.min(compressed.len().saturating_mul(4)));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| EncodingError::Corrupt)?;
    if out.len() > limit {
        return Err(EncodingError::TooLarge { limit });
    }
    if compressed.is_empty() {
        // An empty body is not a gzip stream (flate2 reads it as no members at all).
        return Err(EncodingError::Corrupt);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use http::HeaderValue;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn encoding(values: &[&[u8]]) -> Result<ContentEncoding, EncodingError> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(CONTENT_ENCODING, HeaderValue::from_bytes(v).unwrap());
        }
        ContentEncoding::from_headers(&headers)
    }

    #[test]
    fn only_gzip_and_identity_are_accepted() {
        assert_eq!(encoding(&[]), Ok(ContentEncoding::Identity));
        assert_eq!(encoding(&[b"identity"]), Ok(ContentEncoding::Identity));
        for gz in [&b"gzip"[..], b"GZip", b" gzip\t", b"x-gzip"] {
            assert_eq!(encoding(&[gz]), Ok(ContentEncoding::Gzip));
        }
        for bad in [
            &[&b"br"[..]][..],
            &[b"deflate"],
            &[b"gzip, gzip"],
            &[b"gzip", b"gzip"],
            &[b""],
            &[b"gzip\xff"],
        ] {
            assert_eq!(encoding(bad), Err(EncodingError::Unsupported), "{bad:?}");
        }
    }

    #[test]
    fn gunzip_round_trips_within_the_limit() {
        let data = b"{\"id_webhook_data\": 1}".repeat(100);
        assert_eq!(gunzip(&gzip(&data), data.len()).unwrap(), data);
        // Two members are one body.
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(gunzip(&two, 4).unwrap(), b"abcd");
    }

    #[test]
    fn gunzip_stops_at_the_limit() {
        // 64 MiB of zeros compress to about 64 KiB; the limit stops it at 1 MiB + 1.
        let bomb = gzip(&vec![0; 64 << 20]);
        assert!(bomb.len() < 100 << 10);
        assert_eq!(
            gunzip(&bomb, 1 << 20),
            Err(EncodingError::TooLarge { limit: 1 << 20 })
        );
        let exact = gzip(&[7; 1000]);
        assert_eq!(gunzip(&exact, 1000).unwrap().len(), 1000);
        assert_eq!(
            gunzip(&exact, 999),
            Err(EncodingError::TooLarge { limit: 999 })
        );
    }

    #[test]
    fn gunzip_refuses_what_is_not_gzip() {
        let good = gzip(b"hello");
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 3);
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 1;
        let mut trailing = good.clone();
        trailing.extend(b"junk");
        for bad in [&b""[..], b"hello", &truncated, &bad_crc, &trailing] {
            assert_eq!(gunzip(bad, 1 << 20), Err(EncodingError::Corrupt), "{bad:?}");
        }
    }
}
