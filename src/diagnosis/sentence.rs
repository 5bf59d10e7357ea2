//! The diagnosis as one sentence for the operator: what happened, and what to change.
//! Paths, domains, dates and configuration positions only; never key material.

use std::fmt;

use super::{Diagnosis, Finding, Skew};

/// `7 min 12 s`, `2 h 5 min`, `3 d 4 h`: the two largest units of `secs`.
pub(super) fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, name) in UNITS {
        let n = rest / size;
        rest %= size;
        if n > 0 || !parts.is_empty() {
            parts.push((n, name));
        }
    }
    let shown: Vec<String> = parts
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
    if shown.is_empty() {
        "0 s".to_owned()
    } else {
        shown.join(" ")
    }
}

fn shown_prefix(prefix: &str) -> &str {
    if prefix.is_empty() { "(none)" } else { prefix }
}

impl fmt::Display for Skew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = span(self.behind_secs.unsigned_abs());
        let window = format!(
            "the window is {} behind to {} ahead",
            span(self.max_age_secs.unsigned_abs()),
            span(self.max_ahead_secs.unsigned_abs())
        );
        if self.behind_secs >= 0 {
            write!(
                f,
                "the BI-Signature-Date is {by} behind this relay's clock; {window}; check the \
                 clock of this host and of the sender (NTP), or this is a replayed or \
                 long-delayed request"
            )
        } else {
            write!(
                f,
                "the BI-Signature-Date is {by} ahead of this relay's clock; {window}; check the \
                 clock of this host (NTP): it is most likely behind"
            )
        }
    }
}

impl Diagnosis {
    fn finding(&self, f: &mut fmt::Formatter<'_>, finding: &Finding) -> fmt::Result {
        let domain = &self.domain;
        match finding {
            Finding::PathPrefix { signed, configured } if signed.is_empty() => write!(
                f,
                "signed as /powens-webhook/…, without the prefix {configured:?} put back: \
                 the proxy does not strip it; remove public_path_prefix"
            ),
            Finding::PathPrefix { signed, configured } => write!(
                f,
                "signed as {signed}/powens-webhook/…: set public_path_prefix = {signed:?} \
                 (it is {})",
                shown_prefix(configured)
            ),
            Finding::ExpiredSecret {
                position,
                expired_at,
            } => write!(
                f,
                "signed with a secret of this domain that expired at {} (secrets[{position}]): \
                 Powens still signs with it; finish the rotation at Powens, or move its \
                 expires_at later",
                expired_at.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            Finding::OtherDomain { domain: other } => write!(
                f,
                "signed with the secret of domain {other}, not {domain}'s: the webhook URL \
                 set at Powens for {other} names {domain}, or the two domains' secrets are \
                 swapped in this configuration"
            ),
            Finding::CompressedWithoutHeader => f.write_str(
                "the body arrived gzip-compressed without Content-Encoding: gzip, and was \
                 signed decompressed: a proxy dropped the Content-Encoding header; let it \
                 pass the header (or the body decompressed)",
            ),
            Finding::Decompressed => f.write_str(
                "signed over the gzip-compressed body, which arrived decompressed: a proxy \
                 decoded the Content-Encoding; let it pass the body as Powens sent it",
            ),
            Finding::NoMatch { incomplete } => {
                if *incomplete {
                    f.write_str(
                        "the body is too large to check every likely cause, and those \
                         checked did not match",
                    )?;
                } else {
                    f.write_str(
                        "no likely cause matched (path prefix, an expired secret, another \
                         domain's secret, the body's encoding, the clock)",
                    )?;
                }
                write!(
                    f,
                    ": the secret most likely differs; check that the secret configured for \
                     {domain} is the one Powens gave for it"
                )
            }
        }
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.clock, &self.finding) {
            (Some(skew), None) => write!(f, "{skew}"),
            (Some(skew), Some(finding)) => {
                write!(f, "{skew}; and the signature does not match either: ")?;
                self.finding(f, finding)
            }
            (None, Some(finding)) => self.finding(f, finding),
            (None, None) => f.write_str("the signature matches a current secret"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_show_the_two_largest_units() {
        let cases = [
            (0, "0 s"),
            (59, "59 s"),
            (432, "7 min 12 s"),
            (3_600, "1 h"),
            (7_500, "2 h 5 min"),
            (3 * 86_400 + 4 * 3_600 + 59, "3 d 4 h"),
            (86_400 + 30, "1 d"),
            (u64::MAX, "213503982334601 d 7 h"),
        ];
        for (secs, text) in cases {
            assert_eq!(span(secs), text, "{secs}");
        }
    }
}
