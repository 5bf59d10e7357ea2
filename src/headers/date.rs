//! `BI-Signature-Date`: parsed, and kept byte for byte.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Timelike};

use crate::header_error::HeaderError;

/// Longest `BI-Signature-Date` accepted. The longest RFC 3339 date with nine fraction
/// digits and an offset is 35 bytes.
const MAX_DATE_LEN: usize = 64;
/// Most fraction digits accepted in `BI-Signature-Date` (nanoseconds).
const MAX_FRACTION_DIGITS: usize = 9;

/// The `BI-Signature-Date` header: the date as parsed and the header text byte for byte,
/// because the signature covers the text, not the instant.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureDate {
    raw: String,
    at: DateTime<FixedOffset>,
}

impl SignatureDate {
    /// Parses a `BI-Signature-Date` value: an RFC 3339 (ISO 8601) date and time with a
    /// timezone (`Z` or an offset such as `+02:00`) and 0 to 9 fraction digits, e.g.
    /// `2022-06-27T11:08:52.577831Z`. A leap second (`:60`) is refused.
    ///
    /// # Errors
    /// [`HeaderError::DateWithoutTimezone`], [`HeaderError::DateTooPrecise`] or
    /// [`HeaderError::DateInvalid`].
    pub fn parse(raw: &str) -> Result<Self, HeaderError> {
        if raw.len() > MAX_DATE_LEN || !raw.is_ascii() {
            return Err(HeaderError::DateInvalid);
        }
        if fraction_digits(raw) > MAX_FRACTION_DIGITS {
            return Err(HeaderError::DateTooPrecise);
        }
        match DateTime::parse_from_rfc3339(raw) {
            Ok(at) if at.nanosecond() < 1_000_000_000 => Ok(Self {
                raw: raw.to_owned(),
                at,
            }),
            Ok(_) => Err(HeaderError::DateInvalid),
            Err(_) if NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => {
                Err(HeaderError::DateWithoutTimezone)
            }
            Err(_) => Err(HeaderError::DateInvalid),
        }
    }

    /// The header text exactly as received: this is what is signed.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The instant, with the offset the header gave.
    pub fn at(&self) -> DateTime<FixedOffset> {
        self.at
    }
}

impl fmt::Debug for SignatureDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureDate({:?})", self.raw)
    }
}

/// Counts the digits after the seconds' decimal point (`HH:MM:SS.fff`), 0 if none.
fn fraction_digits(raw: &str) -> usize {
    // The point after the seconds is the first '.' in the string: the date and time
    // fields have none.
    raw.find('.').map_or(0, |dot| {
        raw[dot + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_accepted() {
        for raw in [
            "2022-06-27T11:08:52Z",
            "2022-06-27T11:08:52.5Z",
            "2022-06-27T11:08:52.577831Z",
            "2022-06-27T11:08:52.123456789Z",
            "2022-06-27T13:08:52.577831+02:00",
            "2022-06-27T06:08:52-05:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            let date = SignatureDate::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(date.raw(), raw);
        }
        let a = SignatureDate::parse("2022-06-27T13:08:52.577831+02:00").unwrap();
        let b = SignatureDate::parse("2022-06-27T11:08:52.577831Z").unwrap();
        assert_eq!(a.at(), b.at());
    }

    #[test]
    fn dates_refused() {
        let cases = [
            (
                "2022-06-27T11:08:52.577831",
                HeaderError::DateWithoutTimezone,
            ),
            ("2022-06-27T11:08:52", HeaderError::DateWithoutTimezone),
            (
                "2022-06-27T11:08:52.1234567890Z",
                HeaderError::DateTooPrecise,
            ),
            ("2022-06-27", HeaderError::DateInvalid),
            ("yesterday", HeaderError::DateInvalid),
            ("2022-13-27T11:08:52Z", HeaderError::DateInvalid),
            ("2022-06-27T11:08:60Z", HeaderError::DateInvalid),
            ("", HeaderError::DateInvalid),
            ("2022-06-27T11:08:52.Z", HeaderError::DateInvalid),
        ];
        let long = format!("2022-06-27T11:08:52.{}Z", "0".repeat(100));
        let refused: Vec<_> = cases
            .iter()
            .map(|(raw, _)| *raw)
            .chain([long.as_str()])
            .map(|raw| (raw, SignatureDate::parse(raw).err()))
            .collect();
        let expected: Vec<_> = cases
            .iter()
            .map(|(raw, e)| (*raw, Some(e.clone())))
            .chain([(long.as_str(), Some(HeaderError::DateInvalid))])
            .collect();
        assert_eq!(refused, expected);
    }
}
