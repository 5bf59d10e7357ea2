//! The journal's queries (the writer's are in [`super::ops`]).

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::entry::{Entry, EntryMeta, Filter, RecentId, Seq, State, Stats, Totals};
use super::error::JournalError;
use super::files::Paths;

/// The columns of [`EntryMeta`], in [`RawMeta::read`]'s order; the body, when read,
/// comes after them.
const META: &str = "seq, message_id, received_at, exchange, routing_key, event, \
                    id_webhook_data, state, attempts, last_error, next_attempt_at, \
                    confirmed_at, size";

/// The body's column index after [`META`].
const BODY: usize = 13;

/// A query's error, naming the file.
fn failed(paths: &Paths) -> impl Fn(rusqlite::Error) -> JournalError + '_ {
    |e| JournalError::Read {
        path: paths.db.clone(),
        source: e.into(),
    }
}

/// An entry whose body is not in the file: damaged (the writer inserts both in one
/// transaction, and the schema's trigger deletes both).
fn missing_body(paths: &Paths, seq: Seq) -> JournalError {
    JournalError::Invalid {
        path: paths.db.clone(),
        seq,
        column: "body",
    }
}

/// An entry's columns as stored, before their ranges are checked.
struct RawMeta {
    seq: i64,
    message_id: String,
    received_at: i64,
    exchange: String,
    routing_key: String,
    event: Option<String>,
    id_webhook_data: Option<i64>,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    next_attempt_at: Option<i64>,
    confirmed_at: Option<i64>,
    size: i64,
}

impl RawMeta {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            message_id: row.get(1)?,
            received_at: row.get(2)?,
            exchange: row.get(3)?,
            routing_key: row.get(4)?,
            event: row.get(5)?,
            id_webhook_data: row.get(6)?,
            state: row.get(7)?,
            attempts: row.get(8)?,
            last_error: row.get(9)?,
            next_attempt_at: row.get(10)?,
            confirmed_at: row.get(11)?,
            size: row.get(12)?,
        })
    }

    /// The entry, unless a value is out of its range.
    fn check(self, paths: &Paths) -> Result<EntryMeta, JournalError> {
        let seq = Seq(self.seq);
        let invalid = |column| JournalError::Invalid {
            path: paths.db.clone(),
            seq,
            column,
        };
        let instant = |micros: Option<i64>, column| match micros {
            None => Ok(None),
            Some(micros) => DateTime::from_timestamp_micros(micros)
                .map(Some)
                .ok_or_else(|| invalid(column)),
        };
        Ok(EntryMeta {
            seq,
            received_at: instant(Some(self.received_at), "received_at")?
                .ok_or_else(|| invalid("received_at"))?,
            state: State::parse(&self.state).ok_or_else(|| invalid("state"))?,
            attempts: u32::try_from(self.attempts).map_err(|_| invalid("attempts"))?,
            next_attempt_at: instant(self.next_attempt_at, "next_attempt_at")?,
            confirmed_at: instant(self.confirmed_at, "confirmed_at")?,
            size: u64::try_from(self.size).map_err(|_| invalid("size"))?,
            message_id: self.message_id,
            exchange: self.exchange,
            routing_key: self.routing_key,
            event: self.event,
            id_webhook_data: self.id_webhook_data,
            last_error: self.last_error,
        })
    }
}

/// A count or sum as stored, checked: never negative.
fn count(paths: &Paths, value: i64, column: &'static str) -> Result<u64, JournalError> {
    u64::try_from(value).map_err(|_| JournalError::Invalid {
        path: paths.db.clone(),
        seq: Seq(0),
        column,
    })
}

/// A `LIMIT`: SQLite reads -1 as none.
fn limit(limit: Option<usize>) -> i64 {
    limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Waiting entries (pending and held) after `after`, in `seq` order, with bodies.
pub(crate) fn pending(
    connection: &Connection,
    paths: &Paths,
    after: Option<Seq>,
    max: usize,
) -> Result<Vec<Entry>, JournalError> {
    let sql = format!(
        "SELECT {META}, body FROM entries LEFT JOIN bodies USING (seq)
         WHERE state <> 'confirmed' AND seq > ?1 ORDER BY seq LIMIT ?2"
    );
    let after = after.map_or(i64::MIN, Seq::get);
    let mut statement = connection.prepare(&sql).map_err(failed(paths))?;
    let rows = statement
        .query_map(params![after, limit(Some(max))], |row| {
            Ok((RawMeta::read(row)?, row.get::<_, Option<Vec<u8>>>(BODY)?))
        })
        .map_err(failed(paths))?;
    let mut entries = Vec::new();
    for row in rows {
        let (meta, body) = row.map_err(failed(paths))?;
        let meta = meta.check(paths)?;
        let body = body.ok_or_else(|| missing_body(paths, meta.seq))?;
        entries.push(Entry { meta, body });
    }
    Ok(entries)
}

/// The routing keys that have waiting entries.
pub(crate) fn waiting_per_key(
    connection: &Connection,
    paths: &Paths,
) -> Result<Vec<(String, u64)>, JournalError> {
    let mut statement = connection
        .prepare(
            "SELECT routing_key, count(*) FROM entries WHERE state <> 'confirmed'
             GROUP BY routing_key ORDER BY routing_key",
        )
        .map_err(failed(paths))?;
    let keys = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .map_err(failed(paths))?;
    keys.map(|row| {
        let (key, count) = row.map_err(failed(paths))?;
        // A count is never negative.
        Ok((key, u64::try_from(count).unwrap_or_default()))
    })
    .collect()
}

/// The counts and bytes, from the covering indexes (no body is read).
pub(crate) fn totals(connection: &Connection, paths: &Paths) -> Result<Totals, JournalError> {
    let mut totals = Totals::default();
    let mut statement = connection
        .prepare(
            "SELECT state, count(*), coalesce(sum(size), 0) FROM entries
             WHERE state <> 'confirmed' GROUP BY state",
        )
        .map_err(failed(paths))?;
    let rows = statement
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
        .map_err(failed(paths))?;
    for row in rows {
        let (state, n, bytes): (String, i64, i64) = row.map_err(failed(paths))?;
        let (n, bytes) = (count(paths, n, "count")?, count(paths, bytes, "size")?);
        match State::parse(&state) {
            Some(State::Pending) => totals.pending = n,
            Some(State::Held) => totals.held = n,
            _ => continue,
        }
        totals.undelivered_bytes =
            totals
                .undelivered_bytes
                .checked_add(bytes)
                .ok_or_else(|| JournalError::Invalid {
                    path: paths.db.clone(),
                    seq: Seq(0),
                    column: "size",
                })?;
    }
    let (n, bytes): (i64, i64) = connection
        .query_row(
            "SELECT count(*), coalesce(sum(size), 0) FROM entries WHERE state = 'confirmed'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(failed(paths))?;
    totals.confirmed = count(paths, n, "count")?;
    totals.bytes = totals
        .undelivered_bytes
        .checked_add(count(paths, bytes, "size")?)
        .ok_or_else(|| JournalError::Invalid {
            path: paths.db.clone(),
            seq: Seq(0),
            column: "size",
        })?;
    Ok(totals)
}

/// The journal's figures, as of the last commit.
pub(crate) fn stats(connection: &Connection, paths: &Paths) -> Result<Stats, JournalError> {
    // One read transaction, so that counts and oldest agree.
    connection
        .execute_batch("BEGIN DEFERRED")
        .map_err(failed(paths))?;
    let figures = (|| {
        let totals = totals(connection, paths)?;
        let oldest: Option<i64> = connection
            .query_row(
                "SELECT received_at FROM entries WHERE state <> 'confirmed' ORDER BY seq LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(failed(paths))?;
        Ok((totals, oldest))
    })();
    let _ = connection.execute_batch("COMMIT");
    let (totals, oldest) = figures?;
    let oldest_pending_received_at = match oldest {
        None => None,
        Some(micros) => Some(DateTime::from_timestamp_micros(micros).ok_or(
            JournalError::Invalid {
                path: paths.db.clone(),
                seq: Seq(0),
                column: "received_at",
            },
        )?),
    };
    Ok(Stats {
        totals,
        oldest_pending_received_at,
        file_bytes: paths.file_bytes(),
    })
}

/// A listed entry, with its body if asked for.
pub(crate) type Listed = (EntryMeta, Option<Vec<u8>>);

/// The entries `filter` selects, in `seq` order, with their bodies if `bodies`.
pub(crate) fn list(
    connection: &Connection,
    paths: &Paths,
    filter: &Filter,
    bodies: bool,
) -> Result<Vec<Listed>, JournalError> {
    let mut criteria: Vec<(&str, Value)> = Vec::new();
    if let Some(domain) = &filter.domain {
        criteria.push(("routing_key = ?", Value::Text(domain.clone())));
    }
    if let Some(event) = &filter.event {
        criteria.push(("event = ?", Value::Text(event.clone())));
    }
    if let Some(since) = filter.since {
        criteria.push(("received_at >= ?", since.timestamp_micros().into()));
    }
    if let Some(until) = filter.until {
        criteria.push(("received_at < ?", until.timestamp_micros().into()));
    }
    if let Some(id) = filter.id_webhook_data {
        criteria.push(("id_webhook_data = ?", id.into()));
    }
    if let Some(after) = filter.after {
        criteria.push(("seq > ?", after.get().into()));
    }
    let mut sql = format!(
        "SELECT {META}, {} WHERE 1",
        if bodies {
            "body FROM entries LEFT JOIN bodies USING (seq)"
        } else {
            "NULL FROM entries"
        }
    );
    if filter.pending_only {
        // Spelled as the partial index's condition, so that it is used.
        sql.push_str(" AND state <> 'confirmed'");
    }
    let mut args = Vec::with_capacity(criteria.len() + 1);
    for (clause, value) in criteria {
        sql.push_str(" AND ");
        sql.push_str(clause);
        args.push(value);
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    args.push(limit(filter.limit).into());
    let mut statement = connection.prepare(&sql).map_err(failed(paths))?;
    let rows = statement
        .query_map(params_from_iter(args), |row| {
            Ok((RawMeta::read(row)?, row.get::<_, Option<Vec<u8>>>(BODY)?))
        })
        .map_err(failed(paths))?;
    let mut entries = Vec::new();
    for row in rows {
        let (meta, body) = row.map_err(failed(paths))?;
        let meta = meta.check(paths)?;
        if bodies && body.is_none() {
            return Err(missing_body(paths, meta.seq));
        }
        entries.push((meta, body));
    }
    Ok(entries)
}

/// The webhooks with an `id_webhook_data` received at or after `since`, in `seq` order.
pub(crate) fn recent_ids(
    connection: &Connection,
    paths: &Paths,
    since: DateTime<Utc>,
) -> Result<Vec<RecentId>, JournalError> {
    let mut statement = connection
        .prepare(
            "SELECT routing_key, id_webhook_data, message_id FROM entries
             WHERE received_at >= ?1 AND id_webhook_data IS NOT NULL ORDER BY seq",
        )
        .map_err(failed(paths))?;
    let rows = statement
        .query_map([since.timestamp_micros()], |r| {
            Ok(RecentId {
                routing_key: r.get(0)?,
                id_webhook_data: r.get(1)?,
                message_id: r.get(2)?,
            })
        })
        .map_err(failed(paths))?;
    rows.collect::<Result<_, _>>().map_err(failed(paths))
}
