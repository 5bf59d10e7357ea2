//! Why a refused signature did not match: the likely causes checked one by one, the
//! one that matches named in a sentence for the operator (never for the sender: it
//! goes to the log and the console, not into the HTTP answer).
//!
//! The causes are few and known: a reverse proxy that strips (or does not strip) a path
//! prefix, a secret that expired, another configured domain's secret, a body that a
//! proxy decompressed (or left compressed without its `Content-Encoding`), a clock off
//! by minutes. Each check is one HMAC or a few, so a diagnosis costs a few times a
//! verification; the caller decides how many refusals are worth one (the relay's
//! `diagnosis_rate`). No sentence holds a secret, a signature or any key material:
//! only paths, domain names, dates and configuration positions.

mod checks;
mod prefixes;
mod sentence;

use chrono::{DateTime, Utc};

use crate::domain::Domain;

pub(crate) use checks::{Rings, Suspect, diagnose};
pub(crate) use prefixes::hints_from_headers;

/// The cause a [`Diagnosis`] names: a metric label and the console's tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cause {
    /// The path was signed with another prefix than the one put back.
    PathPrefix,
    /// A secret of the domain that has expired signed it.
    ExpiredSecret,
    /// Another configured domain's secret signed it.
    OtherDomain,
    /// The body was signed before or after `Content-Encoding` decoding, and arrived the
    /// other way.
    ContentEncoding,
    /// The date is outside the freshness window.
    Clock,
    /// None of the above: the secret most likely differs.
    Secret,
}

impl Cause {
    /// Every cause, in the order of the documentation's table.
    pub(crate) const ALL: [Self; 6] = [
        Self::PathPrefix,
        Self::ExpiredSecret,
        Self::OtherDomain,
        Self::ContentEncoding,
        Self::Clock,
        Self::Secret,
    ];

    /// The label: `path_prefix`, `expired_secret`, `other_domain`, `content_encoding`,
    /// `clock` or `secret`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::PathPrefix => "path_prefix",
            Self::ExpiredSecret => "expired_secret",
            Self::OtherDomain => "other_domain",
            Self::ContentEncoding => "content_encoding",
            Self::Clock => "clock",
            Self::Secret => "secret",
        }
    }
}

/// What made the signature fail to match, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// Signed with the path prefix `signed` (maybe empty) where `configured` was put
    /// back.
    PathPrefix {
        /// The prefix Powens signed.
        signed: String,
        /// The prefix put back (`public_path_prefix`).
        configured: String,
    },
    /// Signed with the domain's secret at `position` in its ring, which expired at
    /// `expired_at`.
    ExpiredSecret {
        /// Its position in the ring (the configuration's `secrets[position]`).
        position: usize,
        /// When it stopped being accepted.
        expired_at: DateTime<Utc>,
    },
    /// Signed with the secret of `domain`, not the path's.
    OtherDomain {
        /// The domain whose secret signed it.
        domain: Domain,
    },
    /// The body arrived gzip-compressed without `Content-Encoding: gzip`; the
    /// signature covers it decompressed.
    CompressedWithoutHeader,
    /// The body arrived decompressed; the signature covers it gzip-compressed.
    Decompressed,
    /// Nothing matched (`incomplete`: the body was too large to check every cause).
    NoMatch {
        /// Whether some checks were skipped for the body's size.
        incomplete: bool,
    },
}

impl Finding {
    fn cause(&self) -> Cause {
        match self {
            Self::PathPrefix { .. } => Cause::PathPrefix,
            Self::ExpiredSecret { .. } => Cause::ExpiredSecret,
            Self::OtherDomain { .. } => Cause::OtherDomain,
            Self::CompressedWithoutHeader | Self::Decompressed => Cause::ContentEncoding,
            Self::NoMatch { .. } => Cause::Secret,
        }
    }
}

/// A `BI-Signature-Date` outside the freshness window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Skew {
    /// How far the date is behind the clock, in seconds (negative: ahead).
    pub(crate) behind_secs: i64,
    /// The window: the oldest a date may be, in seconds.
    pub(crate) max_age_secs: i64,
    /// The window: the furthest ahead a date may be, in seconds.
    pub(crate) max_ahead_secs: i64,
}

/// Why a refused webhook's signature did not match: its [`cause`](Self::cause) and,
/// as its `Display`, one sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    /// The domain the webhook's path named.
    domain: Domain,
    /// The date, when it was outside the window.
    clock: Option<Skew>,
    /// What the signature matched, or `None` when a current secret signed it (only the
    /// date was wrong).
    finding: Option<Finding>,
}

impl Diagnosis {
    /// The cause: the clock when the date was refused (the first thing to fix),
    /// otherwise the finding's.
    pub(crate) fn cause(&self) -> Cause {
        match (&self.clock, &self.finding) {
            (Some(_), _) | (None, None) => Cause::Clock,
            (None, Some(finding)) => finding.cause(),
        }
    }
}

#[cfg(test)]
mod tests;
