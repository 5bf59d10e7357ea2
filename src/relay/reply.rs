//! What every route answers with, shared by the webhook route, the listener, the
//! dispatcher and the probes: refusals (a status, a one-line `text/plain` reason,
//! `Retry-After`), the outcome each request is labelled with, and readiness. A leaf:
//! it imports no route.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::axum::{WebhookRejection, plain_text};
use crate::diagnosis::Diagnosis;

/// `Retry-After` (seconds) when too many webhooks are in flight.
pub(crate) const RETRY_AFTER_OVERLOADED: u32 = 1;
/// `Retry-After` (seconds) when the broker (or another store) is unavailable.
pub(crate) const RETRY_AFTER_UNAVAILABLE: u32 = 5;

/// What became of a request: a metric label and a log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Published and confirmed (or written, without a broker).
    Published,
    /// A probe or metrics request answered.
    Served,
    /// Path, headers or body malformed (400).
    Malformed,
    /// Missing, wrong or stale signature (401).
    Unauthorized,
    /// Domain not configured, or no such route (404).
    NotFound,
    /// Body over the limit (413).
    TooLarge,
    /// A `Content-Encoding` other than gzip (415).
    UnsupportedEncoding,
    /// The body did not arrive within the read time-out (408).
    TimedOut,
    /// Too many webhooks in flight (503 with `Retry-After`).
    Overloaded,
    /// The broker did not confirm (503).
    Unavailable,
    /// Anything else (e.g. 405).
    Other,
}

impl Outcome {
    /// The metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Served => "served",
            Self::Malformed => "malformed",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::UnsupportedEncoding => "unsupported_encoding",
            Self::TimedOut => "timed_out",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
            Self::Other => "other",
        }
    }
}

/// What became of a message the publisher took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// Confirmed by the broker (or written, without one).
    Confirmed,
    /// No queue received it, and `unroutable = accept` dropped it.
    Dropped,
    /// Committed to the journal, to be published from it.
    Journaled,
    /// Committed to the journal, held until a queue is bound (`unroutable = hold`).
    Held,
    /// The same webhook was accepted before: not published again.
    Duplicate,
}

impl Delivered {
    /// The log field and the console's word.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Dropped => "dropped",
            Self::Journaled => "journaled",
            Self::Held => "held",
            Self::Duplicate => "duplicate",
        }
    }
}

/// Why a request was refused, for its log line: the text sent back, which never quotes a
/// secret, a signature or a token.
#[derive(Debug, Clone)]
pub(crate) struct Reason(pub(crate) String);

/// Why a refused signature did not match, for the request's log line and the console
/// (never the answer): the diagnosis, or why there is none.
#[derive(Debug, Clone)]
pub(crate) enum SignatureDiagnosis {
    /// Diagnosed.
    Found(Diagnosis),
    /// Not diagnosed: `diagnosis_rate` (this value) was spent, or is 0.
    Skipped(u32),
}

impl SignatureDiagnosis {
    /// The cause's label (`not_diagnosed` when skipped).
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            Self::Found(diagnosis) => diagnosis.cause().label(),
            Self::Skipped(_) => "not_diagnosed",
        }
    }
}

impl std::fmt::Display for SignatureDiagnosis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Found(diagnosis) => write!(f, "{diagnosis}"),
            Self::Skipped(0) => f.write_str("not diagnosed: diagnosis_rate = 0 turns it off"),
            Self::Skipped(rate) => write!(
                f,
                "skipped: more refused signatures than diagnosis_rate = {rate} a second"
            ),
        }
    }
}

/// A refusal: a status, a one-line `text/plain` reason, and the outcome label. One
/// shape for every route.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    outcome: Outcome,
    reason: String,
    retry_after: Option<u32>,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<&'static str>,
    /// For a refused signature: for the log and the console only.
    diagnosis: Option<SignatureDiagnosis>,
}

impl Refusal {
    /// A refusal with `status`, labelled by it.
    pub(crate) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        let outcome = match status {
            StatusCode::UNAUTHORIZED => Outcome::Unauthorized,
            StatusCode::NOT_FOUND => Outcome::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Outcome::UnsupportedEncoding,
            StatusCode::REQUEST_TIMEOUT => Outcome::TimedOut,
            StatusCode::SERVICE_UNAVAILABLE => Outcome::Unavailable,
            _ => Outcome::Malformed,
        };
        Self {
            status,
            outcome,
            reason: reason.into(),
            retry_after: None,
            challenge: None,
            diagnosis: None,
        }
    }

    /// 404 `not found`: a path no route serves.
    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    /// A 503: the client should try again in `retry_after` seconds.
    pub(crate) fn unavailable(outcome: Outcome, reason: String, retry_after: u32) -> Self {
        Self {
            outcome,
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, reason)
        }
    }

    /// With the diagnosis of its signature, which the log line and the console show
    /// (not the answer).
    pub(crate) fn with_diagnosis(mut self, diagnosis: SignatureDiagnosis) -> Self {
        self.diagnosis = Some(diagnosis);
        self
    }

    /// With a `WWW-Authenticate: <challenge>` header (a 401).
    pub(crate) fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = plain_text(self.status, &self.reason, self.retry_after);
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(challenge),
            );
        }
        response.extensions_mut().insert(self.outcome);
        // The request's log line (ops::track) gives the reason, and the diagnosis.
        response.extensions_mut().insert(Reason(self.reason));
        if let Some(diagnosis) = self.diagnosis {
            response.extensions_mut().insert(diagnosis);
        }
        response
    }
}

impl From<WebhookRejection> for Refusal {
    fn from(rejection: WebhookRejection) -> Self {
        Self::new(rejection.status(), rejection.to_string())
    }
}

/// The journal's state, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JournalStatus {
    /// Whether it takes webhooks now (it is open and not full).
    pub(crate) accepting: bool,
    /// Webhooks it holds that are not published yet (pending and held).
    pub(crate) waiting: u64,
}

/// Whether a part can do its work now, as `/readyz` and the metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// Whether a message could be published (or received) now.
    pub(crate) ready: bool,
    /// The broker node in use, its URL without the password.
    pub(crate) node: Option<String>,
    /// Whether the callback store is down (Redis without a connection): `/readyz`
    /// says so, the broker's metrics do not.
    pub(crate) store_down: bool,
    /// The journal's state, when webhooks go through one: while it takes them, the
    /// relay is ready with the broker down.
    pub(crate) journal: Option<JournalStatus>,
}

impl Readiness {
    /// Ready when `other` is ready too; the node named stays `self`'s (the publisher's,
    /// when the relay hosts the dispatcher).
    #[must_use]
    pub(crate) fn and(self, other: &Self) -> Self {
        Self {
            ready: self.ready && other.ready,
            node: self.node,
            store_down: self.store_down || other.store_down,
            journal: self.journal,
        }
    }

    /// `/readyz`'s answer: 200 (`ready`, then the broker node in use when there is
    /// one, and the journal's backlog when it holds webhooks), or 503 while the broker
    /// (and the journal, if any), or the callback store, is unusable. With the broker
    /// down, the relay stays ready while its journal takes webhooks, and says so.
    pub(crate) fn response(&self) -> Response {
        let journaling = self.journal.filter(|j| j.accepting);
        if (self.ready || journaling.is_some()) && self.store_down {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the callback store is unavailable\n",
            )
                .into_response();
        }
        let waiting = |j: JournalStatus| match j.waiting {
            0 => String::new(),
            n => format!("journal: {n} webhooks waiting to be published\n"),
        };
        if self.ready {
            let mut body = match &self.node {
                Some(node) => format!("ready\nbroker node: {node}\n"),
                None => "ready\n".to_owned(),
            };
            body.push_str(&self.journal.map(waiting).unwrap_or_default());
            (StatusCode::OK, body).into_response()
        } else if let Some(journal) = journaling {
            let body = format!(
                "ready\nthe message broker is unavailable: webhooks are kept in the journal\n{}",
                waiting(journal)
            );
            (StatusCode::OK, body).into_response()
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the message broker is unavailable\n",
            )
                .into_response()
        }
    }
}
