//! The instants a listing is filtered by, as people write them: an ISO 8601 date and
//! time (UTC unless it says otherwise), or a duration ago (`90s`, `30m`, `2h`, `7d`).

use chrono::{DateTime, TimeDelta, Utc};

use crate::time::IsoDateTime;

/// `text` as an instant: ISO 8601, or a duration before `now`; `None` for anything
/// else (a negative or overflowing duration included).
pub(crate) fn parse_instant(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(at) = text.parse::<IsoDateTime>() {
        return Some(at.to_utc());
    }
    let unit = text.chars().last()?;
    let count: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let ago = match unit {
        's' => TimeDelta::try_seconds(count),
        'm' => TimeDelta::try_minutes(count),
        'h' => TimeDelta::try_hours(count),
        'd' => TimeDelta::try_days(count),
        _ => None,
    };
    ago.filter(|ago| *ago >= TimeDelta::zero())
        .and_then(|ago| now.checked_sub_signed(ago))
}
