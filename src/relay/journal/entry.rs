//! The journal's vocabulary: entries, their states, what a listing selects and the
//! figures the journal reports.

use chrono::{DateTime, Utc};

/// An entry's place in the journal: its arrival order. Never reused, even once the
/// entry is pruned (the table is `AUTOINCREMENT`), so that a drain's cursor never skips
/// a newer entry that took an old number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Seq(pub(crate) i64);

impl Seq {
    /// The number, as stored.
    pub(crate) fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Seq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum State {
    /// Waiting to be published.
    Pending,
    /// Waiting for a condition the broker reported (no queue bound): retried with
    /// backoff, at `next_attempt_at`.
    Held,
    /// Confirmed by the broker; kept for replay until the retention or the byte limit
    /// removes it.
    Confirmed,
}

impl State {
    /// The text stored in the `state` column.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Held => "held",
            Self::Confirmed => "confirmed",
        }
    }

    /// The state stored as `text`, if it is one.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "held" => Some(Self::Held),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

/// The states an entry can be written or deferred in: not delivered yet. (Only the
/// writer's confirm makes an entry [`State::Confirmed`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Undelivered {
    /// Published as soon as the drain reaches it.
    Pending,
    /// Kept back until `next_attempt_at` (an unroutable webhook with `unroutable = "hold"`).
    Held,
}

impl From<Undelivered> for State {
    fn from(state: Undelivered) -> Self {
        match state {
            Undelivered::Pending => Self::Pending,
            Undelivered::Held => Self::Held,
        }
    }
}

/// A message to commit to the journal.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct NewEntry {
    /// The AMQP `message_id` it is published with, now and on every re-publish or replay.
    pub(crate) message_id: String,
    /// When the relay received it.
    pub(crate) received_at: DateTime<Utc>,
    /// The exchange's full name.
    pub(crate) exchange: String,
    /// The routing key (for webhooks, the Powens domain).
    pub(crate) routing_key: String,
    /// The Powens event, when known (for listings).
    pub(crate) event: Option<String>,
    /// The webhook's `id_webhook_data`, when its body has one (for duplicates).
    pub(crate) id_webhook_data: Option<i64>,
    /// Pending, or held (with `next_attempt_at`).
    pub(crate) state: Undelivered,
    /// When a held entry is tried next.
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    /// Exactly the bytes to publish (the TeaL JSON message).
    pub(crate) body: Vec<u8>,
}

/// Bodies carry bank data: `Debug` prints their length only.
impl std::fmt::Debug for NewEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEntry")
            .field("message_id", &self.message_id)
            .field("received_at", &self.received_at)
            .field("exchange", &self.exchange)
            .field("routing_key", &self.routing_key)
            .field("event", &self.event)
            .field("id_webhook_data", &self.id_webhook_data)
            .field("state", &self.state)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// An entry as read back, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryMeta {
    /// Its arrival order.
    pub(crate) seq: Seq,
    /// The AMQP `message_id`.
    pub(crate) message_id: String,
    /// When the relay received it.
    pub(crate) received_at: DateTime<Utc>,
    /// The exchange's full name.
    pub(crate) exchange: String,
    /// The routing key (the Powens domain for webhooks).
    pub(crate) routing_key: String,
    /// The Powens event, when known.
    pub(crate) event: Option<String>,
    /// The webhook's `id_webhook_data`, when it has one.
    pub(crate) id_webhook_data: Option<i64>,
    /// Where it stands.
    pub(crate) state: State,
    /// How many publishes failed.
    pub(crate) attempts: u32,
    /// Why the last publish failed.
    pub(crate) last_error: Option<String>,
    /// When the next publish is due (after a failure).
    pub(crate) next_attempt_at: Option<DateTime<Utc>>,
    /// When the broker confirmed it.
    pub(crate) confirmed_at: Option<DateTime<Utc>>,
    /// Its body's length in bytes (what the byte limit counts).
    pub(crate) size: u64,
}

/// An entry with its body, as the drain publishes it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Everything but the body.
    pub(crate) meta: EntryMeta,
    /// Exactly the bytes to publish.
    pub(crate) body: Vec<u8>,
}

/// Bodies carry bank data: `Debug` prints their length only.
impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("meta", &self.meta)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// What a listing selects; every criterion given must hold. Ordered by `seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Only this routing key (Powens domain).
    pub(crate) domain: Option<String>,
    /// Only this event.
    pub(crate) event: Option<String>,
    /// Only entries received at or after this instant.
    pub(crate) since: Option<DateTime<Utc>>,
    /// Only entries received before this instant (half-open, so that consecutive
    /// windows do not overlap).
    pub(crate) until: Option<DateTime<Utc>>,
    /// Only this `id_webhook_data`.
    pub(crate) id_webhook_data: Option<i64>,
    /// Only pending and held entries.
    pub(crate) pending_only: bool,
    /// Only entries after this one (to page through a long listing).
    pub(crate) after: Option<Seq>,
    /// At most this many entries; all when `None`.
    pub(crate) limit: Option<usize>,
}

/// The journal's figures, read from the file (so that `journal stats` can read them
/// while `serve` runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stats {
    /// The counts and bytes.
    pub(crate) totals: Totals,
    /// When the first waiting entry (lowest `seq`, pending or held) was received.
    pub(crate) oldest_pending_received_at: Option<DateTime<Utc>>,
    /// The file's size on disk, write-ahead log included.
    pub(crate) file_bytes: u64,
}

/// The live figures the writer keeps as it commits: what metrics read, without a
/// query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    /// Entries waiting to be published.
    pub(crate) pending: u64,
    /// Entries held back.
    pub(crate) held: u64,
    /// Delivered entries kept for replay.
    pub(crate) confirmed: u64,
    /// The bodies' bytes, all entries.
    pub(crate) bytes: u64,
    /// The bodies' bytes of pending and held entries.
    pub(crate) undelivered_bytes: u64,
}

/// What the writer did since the journal was opened (counters, for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Counters {
    /// Transactions committed (one fsync each).
    pub(crate) commits: u64,
    /// Commits that failed (full disk, I/O error): their requests were answered with
    /// the error.
    pub(crate) failed_commits: u64,
    /// Entries appended.
    pub(crate) appended: u64,
    /// Entries confirmed.
    pub(crate) confirmed: u64,
    /// Failed publishes recorded.
    pub(crate) deferred: u64,
    /// Confirmed entries dropped before their retention to stay under the byte limit.
    pub(crate) dropped: u64,
    /// Their bodies' bytes.
    pub(crate) dropped_bytes: u64,
    /// Confirmed entries pruned after their retention.
    pub(crate) pruned: u64,
}

/// A committed append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// The new entry.
    pub(crate) seq: Seq,
    /// Confirmed entries dropped (oldest confirm first) to make room under the byte
    /// limit; also logged and counted, never silent.
    pub(crate) dropped: u64,
    /// Their bodies' bytes.
    pub(crate) dropped_bytes: u64,
}

/// A webhook the journal accepted, for a duplicate check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecentId {
    /// The routing key (Powens domain).
    pub(crate) routing_key: String,
    /// The webhook's `id_webhook_data`.
    pub(crate) id_webhook_data: i64,
    /// The message id it was (or will be) published with.
    pub(crate) message_id: String,
}
