//! Dates as TeaL writes them: Python's `datetime.isoformat()`.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDateTime, SubsecRound, TimeZone, Timelike, Utc,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A date and time as Python (and so TeaL) holds it: microsecond precision, with or
/// without a UTC offset ("aware" or "naive").
///
/// Written like Python's `isoformat()`: `2023-05-01T12:00:00` (no fraction when it is
/// zero), `2022-06-27T11:08:52.577831+00:00`. Read from ISO 8601 / RFC 3339 text with
/// or without fraction (digits past the sixth are dropped, as pydantic does), with or
/// without `Z` or an offset, `T` or a space between date and time.
///
/// ```
/// use powens_webhooks::IsoDateTime;
///
/// let t: IsoDateTime = "2022-06-27T11:08:52.577831Z".parse()?;
/// assert_eq!(t.to_string(), "2022-06-27T11:08:52.577831+00:00");
/// let naive: IsoDateTime = "2023-05-01T12:00:00.000000".parse()?;
/// assert_eq!(naive.to_string(), "2023-05-01T12:00:00");
/// # Ok::<(), powens_webhooks::IsoDateTimeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IsoDateTime {
    local: NaiveDateTime,
    offset: Option<FixedOffset>,
}

impl IsoDateTime {
    /// The current time as a naive UTC value: TeaL's `datetime.utcnow()`.
    pub fn now_naive_utc() -> Self {
        Self::naive_utc(Utc::now())
    }

    /// `at` as a naive UTC value (the form of every message's `timestamp`).
    pub fn naive_utc(at: DateTime<Utc>) -> Self {
        Self {
            local: python_precision(at.naive_utc()),
            offset: None,
        }
    }

    /// `at` with its offset (the form of `signature_date`).
    pub fn aware(at: DateTime<FixedOffset>) -> Self {
        Self {
            local: python_precision(at.naive_local()),
            offset: Some(*at.offset()),
        }
    }

    /// The instant, reading a naive value as UTC.
    pub fn to_utc(&self) -> DateTime<Utc> {
        match self.offset {
            Some(offset) => offset
                .from_local_datetime(&self.local)
                .single()
                .map_or_else(|| self.local.and_utc(), |at| at.with_timezone(&Utc)),
            None => self.local.and_utc(),
        }
    }

    /// The offset, for an aware value.
    pub fn offset(&self) -> Option<FixedOffset> {
        self.offset
    }
}

/// `local` as Python can hold it: microseconds, and a leap second (which chrono keeps as
/// a nanosecond count past one second) folded into the last microsecond of its minute.
fn python_precision(local: NaiveDateTime) -> NaiveDateTime {
    let local = local.trunc_subsecs(6);
    if local.nanosecond() < 1_000_000_000 {
        return local;
    }
    local.with_nanosecond(999_999_000).unwrap_or(local)
}

impl fmt::Display for IsoDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = &self.local;
        if (0..=9999).contains(&local.year()) {
            // What %Y-%m-%dT%H:%M:%S prints for these years, without parsing a format
            // string on every message.
            write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                local.year(),
                local.month(),
                local.day(),
                local.hour(),
                local.minute(),
                local.second()
            )?;
        } else {
            write!(f, "{}", local.format("%Y-%m-%dT%H:%M:%S"))?;
        }
        let micros = self.local.and_utc().timestamp_subsec_micros();
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        if let Some(offset) = self.offset {
            let secs = offset.local_minus_utc();
            let sign = if secs < 0 { '-' } else { '+' };
            let secs = secs.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", secs / 3600, secs / 60 % 60)?;
            if secs % 60 != 0 {
                write!(f, ":{:02}", secs % 60)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for IsoDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IsoDateTime({self})")
    }
}

impl FromStr for IsoDateTime {
    type Err = IsoDateTimeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > 64 || !text.is_ascii() {
            return Err(IsoDateTimeError);
        }
        // Python has no leap seconds: `:60` is refused, as TeaL would.
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return (at.nanosecond() < 1_000_000_000)
                .then(|| Self::aware(at))
                .ok_or(IsoDateTimeError);
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
                return (local.nanosecond() < 1_000_000_000)
                    .then(|| Self {
                        local: python_precision(local),
                        offset: None,
                    })
                    .ok_or(IsoDateTimeError);
            }
        }
        Err(IsoDateTimeError)
    }
}

/// The text is not an ISO 8601 date and time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an ISO 8601 date and time (expected e.g. 2023-05-01T12:00:00 or 2022-06-27T11:08:52.577831+00:00)"
)]
pub struct IsoDateTimeError;

impl Serialize for IsoDateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IsoDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_part_is_what_chrono_prints_with_the_format_string() {
        // Every year from 0 to 9999 and beyond the fast path, with varied fields.
        for (i, year) in (0..=9999)
            .step_by(7)
            .chain([-1, 10_000, 262_000])
            .enumerate()
        {
            let i = u32::try_from(i).unwrap();
            let at = chrono::NaiveDate::from_ymd_opt(year, i % 12 + 1, i % 28 + 1)
                .unwrap()
                .and_hms_opt(i % 24, i % 60, (i * 7) % 60)
                .unwrap();
            let text = IsoDateTime::naive_utc(at.and_utc()).to_string();
            assert_eq!(text, at.format("%Y-%m-%dT%H:%M:%S").to_string(), "{year}");
        }
    }

    #[test]
    fn python_isoformat() {
        let cases = [
            ("2023-05-01T12:00:00", "2023-05-01T12:00:00"),
            ("2023-05-01T12:00:00.000000", "2023-05-01T12:00:00"),
            ("2023-05-01 12:00:00.5", "2023-05-01T12:00:00.500000"),
            ("2026-11-22T08:33:03.697265", "2026-11-22T08:33:03.697265"),
            (
                "2022-06-27T11:08:52.577831Z",
                "2022-06-27T11:08:52.577831+00:00",
            ),
            (
                "2022-06-27T11:08:52.577831999+02:00",
                "2022-06-27T11:08:52.577831+02:00",
            ),
            ("2022-06-27T11:08:52-05:30", "2022-06-27T11:08:52-05:30"),
        ];
        for (input, written) in cases {
            let parsed: IsoDateTime = input.parse().unwrap();
            assert_eq!(parsed.to_string(), written, "{input}");
            assert_eq!(written.parse::<IsoDateTime>().unwrap(), parsed);
        }
        for bad in [
            "",
            "2023-05-01",
            "12:00:00",
            "2023-05-01T25:00:00",
            "now",
            "2024-03-04T03:43:60",
            "2024-03-04T03:43:60Z",
        ] {
            assert!(bad.parse::<IsoDateTime>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_leap_second_from_chrono_is_folded_into_its_minute() {
        let leap = NaiveDateTime::parse_from_str("2016-12-31T23:59:60.5", "%Y-%m-%dT%H:%M:%S%.f")
            .unwrap()
            .and_utc();
        let t = IsoDateTime::naive_utc(leap);
        assert_eq!(t.to_string(), "2016-12-31T23:59:59.999999");
        assert_eq!(t.to_string().parse::<IsoDateTime>().unwrap(), t);
    }

    #[test]
    fn utc_instant() {
        let a: IsoDateTime = "2022-06-27T13:08:52+02:00".parse().unwrap();
        let b: IsoDateTime = "2022-06-27T11:08:52".parse().unwrap();
        assert_eq!(a.to_utc(), b.to_utc());
        assert_eq!(IsoDateTime::naive_utc(a.to_utc()), b);
    }
}
