//! The date parsers (`BI-Signature-Date`, TeaL's ISO dates) on arbitrary text, and the
//! freshness check on whatever they accept.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use powens_webhooks::{FreshnessWindow, IsoDateTime, SignatureDate};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(date) = SignatureDate::parse(text) {
        assert_eq!(date.raw(), text);
        // Whatever the date, the window check returns and never panics.
        for now in [Utc::now(), Utc.timestamp_opt(0, 0).unwrap()] {
            let _ = FreshnessWindow::default().check(date.at(), now);
            let _ = FreshnessWindow::new(Duration::MAX, Duration::ZERO).check(date.at(), now);
        }
        // The TeaL form of the date reads back as the same instant (to the microsecond).
        let teal = IsoDateTime::aware(date.at());
        let back: IsoDateTime = teal.to_string().parse().unwrap();
        assert_eq!(back, teal);
    }
    if let Ok(iso) = text.parse::<IsoDateTime>() {
        let again: IsoDateTime = iso.to_string().parse().unwrap();
        assert_eq!(again, iso);
    }
});
