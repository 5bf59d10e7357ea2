//! JSON exactly as TeaL writes it: Python's `json.dumps(separators=(',', ':'))`, whose
//! `ensure_ascii` escapes every character outside printable ASCII as `\uXXXX`.

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// serde_json's compact output, with the characters Python escapes and serde_json does
/// not (DEL and everything above ASCII) written as lower-case `\uXXXX`, astral
/// characters as surrogate pairs.
struct AsciiFormatter;

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        // Scan bytes, not chars: most text is ASCII, and a byte at or above 0x7f always
        // starts (or is) a character to escape.
        while let Some(offset) = bytes[start..].iter().position(|&b| b >= 0x7f) {
            let index = start + offset;
            writer.write_all(&bytes[start..index])?;
            let ch = fragment[index..].chars().next().unwrap_or_default();
            let mut units = [0_u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = index + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// `value` as TeaL's JSON bytes.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    to_vec_with_capacity(value, 256)
}

/// As [`to_vec`], into a buffer of `capacity` bytes to start with.
pub(crate) fn to_vec_with_capacity<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    let mut serializer = Serializer::with_formatter(&mut out, AsciiFormatter);
    // Serializing our message types into memory cannot fail: every map key is a string
    // and no Serialize impl here returns an error.
    if value.serialize(&mut serializer).is_err() {
        unreachable!("TeaL messages always serialize");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_python_ensure_ascii() {
        let text = "Caf\u{e9} \u{7f}\u{1f600}\"\\\n\u{1}/~";
        assert_eq!(
            String::from_utf8(to_vec(text)).unwrap(),
            r#""Caf\u00e9 \u007f\ud83d\ude00\"\\\n\u0001/~""#
        );
        let back: String = serde_json::from_slice(&to_vec(text)).unwrap();
        assert_eq!(back, text);
    }
}
