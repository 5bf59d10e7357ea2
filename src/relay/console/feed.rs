//! What the console knows of the webhooks that came in: the last ones (for the page
//! that opens), each new one (for the pages open), requests per minute over the last
//! hour and refusals by reason. Filled by [`observe`], a middleware on `serve`'s
//! routes; in memory only, since the relay started.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::axum::Authenticity;
use crate::relay::publish::WebhookFacts;
use crate::relay::reply::{Delivered, Outcome, Reason, SignatureDiagnosis};

/// How many webhooks the page shows when it opens.
pub(crate) const RECENT: usize = 200;
/// Minutes of the requests-per-minute chart.
pub(crate) const MINUTES: usize = 60;
/// The longest domain or event name kept (a path is untrusted input).
const NAME_CHARS: usize = 100;

/// What became of a webhook, as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its signature verified, accepted.
    Verified,
    /// A forward-mode domain's: accepted unverified.
    Forwarded,
    /// Refused (4xx): its reason, and the diagnosis of a refused signature.
    Refused,
    /// The relay failed it (5xx): Powens retries.
    Failed,
}

impl Verdict {
    /// The word shown.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Forwarded => "forwarded",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// One webhook request, as the console shows it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Numbered from 1 since the relay started.
    pub(crate) number: u64,
    /// When its answer was sent.
    pub(crate) at: DateTime<Utc>,
    /// The `x-request-id` answered (the log line's).
    pub(crate) request_id: String,
    /// The domain and the event, as the path named them.
    pub(crate) domain: String,
    pub(crate) event: String,
    /// The HTTP status answered.
    pub(crate) status: u16,
    pub(crate) verdict: Verdict,
    /// Confirmed, journaled, held, duplicate, dropped.
    pub(crate) delivered: Option<&'static str>,
    /// The refusal's line, as answered.
    pub(crate) reason: Option<String>,
    /// Why the signature did not match, as the relay found it (its cause, its sentence).
    pub(crate) diagnosis: Option<(&'static str, String)>,
    /// The body's `id_webhook_data`.
    pub(crate) id_webhook_data: Option<u64>,
    /// How long the relay took, in milliseconds.
    pub(crate) millis: f64,
}

impl Row {
    /// The reason refusals are counted under: the diagnosis' cause for a signature,
    /// else the outcome.
    fn refusal_kind(&self, outcome: Option<Outcome>) -> String {
        match (&self.diagnosis, outcome) {
            (Some((cause, _)), _) => format!("signature: {}", cause.replace('_', " ")),
            (None, Some(outcome)) => outcome.label().replace('_', " "),
            (None, None) => format!("status {}", self.status),
        }
    }
}

/// One minute of the chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Minute {
    /// Minutes since the Unix epoch.
    stamp: i64,
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    pub(crate) failed: u64,
}

#[derive(Debug)]
struct Tallies {
    recent: VecDeque<Arc<Row>>,
    minutes: [Minute; MINUTES],
    refusals: BTreeMap<String, u64>,
}

impl Default for Tallies {
    fn default() -> Self {
        Self {
            recent: VecDeque::with_capacity(RECENT),
            minutes: [Minute::default(); MINUTES],
            refusals: BTreeMap::new(),
        }
    }
}

/// The console's record of webhooks: see the module's documentation.
#[derive(Debug)]
pub(crate) struct Feed {
    tallies: Mutex<Tallies>,
    next: AtomicU64,
    new_rows: broadcast::Sender<Arc<Row>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            tallies: Mutex::default(),
            next: AtomicU64::new(1),
            new_rows: broadcast::channel(512).0,
        }
    }
}

impl Feed {
    fn tallies(&self) -> MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `row` (its number given here), counted under `outcome` if refused.
    pub(crate) fn record(&self, mut row: Row, outcome: Option<Outcome>) {
        row.number = self.next.fetch_add(1, Ordering::Relaxed);
        let kind = matches!(row.verdict, Verdict::Refused).then(|| row.refusal_kind(outcome));
        let stamp = row.at.timestamp().div_euclid(60);
        let row = Arc::new(row);
        {
            let mut tallies = self.tallies();
            let slot = usize::try_from(stamp.rem_euclid(MINUTES as i64)).unwrap_or(0);
            let minute = &mut tallies.minutes[slot];
            if minute.stamp != stamp {
                *minute = Minute {
                    stamp,
                    ..Minute::default()
                };
            }
            match row.verdict {
                Verdict::Verified | Verdict::Forwarded => minute.accepted += 1,
                Verdict::Refused => minute.refused += 1,
                Verdict::Failed => minute.failed += 1,
            }
            if let Some(kind) = kind {
                *tallies.refusals.entry(kind).or_default() += 1;
            }
            if tallies.recent.len() == RECENT {
                tallies.recent.pop_back();
            }
            tallies.recent.push_front(row.clone());
        }
        // No page open: nobody to tell.
        let _ = self.new_rows.send(row);
    }

    /// The last webhooks, newest first.
    pub(crate) fn recent(&self) -> Vec<Arc<Row>> {
        self.tallies().recent.iter().cloned().collect()
    }

    /// Each webhook recorded from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Row>> {
        self.new_rows.subscribe()
    }

    /// The last [`MINUTES`] minutes up to `now`'s, oldest first (empty minutes
    /// included).
    pub(crate) fn per_minute(&self, now: DateTime<Utc>) -> Vec<Minute> {
        let current = now.timestamp().div_euclid(60);
        let tallies = self.tallies();
        (0..MINUTES as i64)
            .rev()
            .map(|ago| {
                let stamp = current - ago;
                let slot = usize::try_from(stamp.rem_euclid(MINUTES as i64)).unwrap_or(0);
                let minute = tallies.minutes[slot];
                if minute.stamp == stamp {
                    minute
                } else {
                    Minute {
                        stamp,
                        ..Minute::default()
                    }
                }
            })
            .collect()
    }

    /// Refusals since the relay started, by reason, most frequent first.
    pub(crate) fn refusals(&self) -> Vec<(String, u64)> {
        let mut counts: Vec<_> = self
            .tallies()
            .refusals
            .iter()
            .map(|(kind, n)| (kind.clone(), *n))
            .collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }
}

/// At most [`NAME_CHARS`] characters of `text`.
fn shortened(text: &str) -> String {
    text.chars().take(NAME_CHARS).collect()
}

/// Middleware on `serve`'s routes: every webhook request is recorded in the feed
/// once answered, from its path and what the route left in the response.
pub(crate) async fn observe(
    State(feed): State<Arc<Feed>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(names) = request.uri().path().strip_prefix("/powens-webhook/") else {
        return next.run(request).await;
    };
    let (domain, event) = names.split_once('/').unwrap_or((names, ""));
    let (domain, event) = (shortened(domain), shortened(event));
    let started = Instant::now();
    let response = next.run(request).await;
    let extensions = response.extensions();
    let status = response.status();
    let facts = extensions.get::<WebhookFacts>();
    let verdict = match facts.map(|f| f.authenticity) {
        _ if status.is_server_error() => Verdict::Failed,
        _ if !status.is_success() => Verdict::Refused,
        Some(Authenticity::Forwarded) => Verdict::Forwarded,
        _ => Verdict::Verified,
    };
    let row = Row {
        number: 0,
        at: Utc::now(),
        request_id: response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        domain,
        event,
        status: status.as_u16(),
        verdict,
        delivered: extensions.get::<Delivered>().map(|d| d.label()),
        reason: extensions.get::<Reason>().map(|r| r.0.clone()),
        diagnosis: extensions
            .get::<SignatureDiagnosis>()
            .map(|d| (d.cause(), d.to_string())),
        id_webhook_data: facts.and_then(|f| f.id_webhook_data),
        millis: started.elapsed().as_secs_f64() * 1000.0,
    };
    feed.record(row, extensions.get::<Outcome>().copied());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(at: DateTime<Utc>, verdict: Verdict) -> Row {
        Row {
            number: 0,
            at,
            request_id: String::new(),
            domain: "budgea.biapi.pro".into(),
            event: "USER_SYNCED".into(),
            status: 204,
            verdict,
            delivered: None,
            reason: None,
            diagnosis: None,
            id_webhook_data: None,
            millis: 1.0,
        }
    }

    #[test]
    fn minutes_roll_over_and_old_ones_read_as_empty() {
        let feed = Feed::default();
        let noon = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 10).unwrap();
        feed.record(row(noon, Verdict::Verified), None);
        feed.record(row(noon, Verdict::Refused), Some(Outcome::Unauthorized));
        let later = noon + chrono::TimeDelta::minutes(2);
        feed.record(row(later, Verdict::Forwarded), None);
        let minutes = feed.per_minute(later);
        assert_eq!(minutes.len(), MINUTES);
        let last = minutes[MINUTES - 1];
        assert_eq!((last.accepted, last.refused), (1, 0));
        let noons = minutes[MINUTES - 3];
        assert_eq!((noons.accepted, noons.refused), (1, 1));
        // An hour later, the same slots hold nothing of that hour.
        let hour_later = later + chrono::TimeDelta::minutes(60);
        assert!(feed.per_minute(hour_later).iter().all(|m| m.accepted == 0));
        // A new minute in a slot used an hour before starts from zero.
        feed.record(row(hour_later, Verdict::Verified), None);
        assert_eq!(feed.per_minute(hour_later)[MINUTES - 1].accepted, 1);
    }

    #[test]
    fn recent_keeps_the_newest_and_refusals_count_by_reason() {
        let feed = Feed::default();
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        for _ in 0..RECENT + 5 {
            feed.record(row(at, Verdict::Verified), None);
        }
        let recent = feed.recent();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].number, (RECENT + 5) as u64);
        let mut refused = row(at, Verdict::Refused);
        refused.status = 401;
        feed.record(refused.clone(), Some(Outcome::Unauthorized));
        feed.record(refused.clone(), Some(Outcome::Unauthorized));
        refused.status = 404;
        feed.record(refused, Some(Outcome::NotFound));
        assert_eq!(
            feed.refusals(),
            [("unauthorized".to_owned(), 2), ("not found".to_owned(), 1)]
        );
    }
}
