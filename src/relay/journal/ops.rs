//! The changes the writer applies: append, confirm, defer, prune; and the byte limit.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::entry::{Appended, NewEntry, Seq, State, Totals, Undelivered};
use super::request::{Failure, Op, Tx};

/// The longest `last_error` kept: an error text must not grow the journal.
const MAX_ERROR_CHARS: usize = 1000;

/// Appends an entry, making room under the byte limit first.
#[derive(Debug)]
pub(crate) struct Append(pub(crate) NewEntry);

impl Op for Append {
    type Output = Appended;

    fn apply(&self, tx: &mut Tx<'_, '_>) -> Result<Appended, Failure> {
        let entry = &self.0;
        let size = u64::try_from(entry.body.len()).unwrap_or(u64::MAX);
        let full = Failure::Full {
            max_bytes: tx.max_bytes,
        };
        // Pending and held entries are never dropped: if they alone would pass the
        // limit, the webhook is refused (503) rather than anything lost.
        let undelivered_bytes = tx
            .totals
            .undelivered_bytes
            .checked_add(size)
            .filter(|bytes| *bytes <= tx.max_bytes)
            .ok_or_else(|| full.clone())?;
        let excess = tx
            .totals
            .bytes
            .saturating_add(size)
            .saturating_sub(tx.max_bytes);
        let (dropped, dropped_bytes) = if excess > 0 {
            drop_oldest_confirmed(tx, excess)?
        } else {
            (0, 0)
        };
        if dropped_bytes < excess {
            // The figures said confirmed entries would free enough and they did not:
            // refuse rather than pass the limit.
            return Err(full);
        }
        tx.sql.insert.execute(params![
            entry.message_id,
            entry.received_at.timestamp_micros(),
            entry.exchange,
            entry.routing_key,
            entry.event,
            entry.id_webhook_data,
            State::from(entry.state).as_str(),
            entry.next_attempt_at.map(|at| at.timestamp_micros()),
            i64::try_from(size).unwrap_or(i64::MAX),
        ])?;
        let seq = Seq(tx.connection.last_insert_rowid());
        tx.sql.insert_body.execute(params![seq.get(), entry.body])?;
        let totals = &mut *tx.totals;
        match entry.state {
            Undelivered::Pending => totals.pending = totals.pending.saturating_add(1),
            Undelivered::Held => totals.held = totals.held.saturating_add(1),
        }
        totals.bytes = totals.bytes.saturating_add(size);
        totals.undelivered_bytes = undelivered_bytes;
        tx.counts.appended = tx.counts.appended.saturating_add(1);
        Ok(Appended {
            seq,
            dropped,
            dropped_bytes,
        })
    }

    fn weight(&self) -> usize {
        self.0.body.len()
    }
}

/// Deletes confirmed entries, oldest confirm first, until `excess` bytes are freed (or
/// none is left). Returns how many and their bytes.
fn drop_oldest_confirmed(tx: &mut Tx<'_, '_>, excess: u64) -> Result<(u64, u64), Failure> {
    let mut victims = Vec::new();
    let mut freed = 0u64;
    let mut rows = tx.sql.oldest_confirmed.query([])?;
    while freed < excess {
        let Some(row) = rows.next()? else { break };
        let (seq, size): (i64, i64) = (row.get(0)?, row.get(1)?);
        freed = freed.saturating_add(u64::try_from(size).unwrap_or(0));
        victims.push(seq);
    }
    drop(rows);
    for seq in &victims {
        tx.sql.delete.execute([seq])?;
    }
    let count = u64::try_from(victims.len()).unwrap_or(u64::MAX);
    tx.totals.confirmed = tx.totals.confirmed.saturating_sub(count);
    tx.totals.bytes = tx.totals.bytes.saturating_sub(freed);
    tx.counts.dropped = tx.counts.dropped.saturating_add(count);
    tx.counts.dropped_bytes = tx.counts.dropped_bytes.saturating_add(freed);
    Ok((count, freed))
}

/// The state and size of entry `seq`, if it exists.
fn state_of(tx: &mut Tx<'_, '_>, seq: Seq) -> Result<Option<(State, u64)>, Failure> {
    let found: Option<(String, i64)> = tx
        .sql
        .state_of
        .query_row([seq.get()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(found.and_then(|(state, size)| {
        // A state this relay does not write is left alone, as if absent.
        Some((State::parse(&state)?, u64::try_from(size).unwrap_or(0)))
    }))
}

/// Takes one entry off the count of its state.
fn uncount(totals: &mut Totals, state: State) {
    let count = match state {
        State::Pending => &mut totals.pending,
        State::Held => &mut totals.held,
        State::Confirmed => &mut totals.confirmed,
    };
    *count = count.saturating_sub(1);
}

/// Marks entries confirmed (the broker took them); entries already confirmed or gone
/// are skipped. Returns how many changed.
#[derive(Debug)]
pub(crate) struct Confirm(pub(crate) Vec<Seq>);

impl Op for Confirm {
    type Output = u64;

    fn apply(&self, tx: &mut Tx<'_, '_>) -> Result<u64, Failure> {
        let mut changed = 0u64;
        for &seq in &self.0 {
            let Some((state, size)) = state_of(tx, seq)? else {
                continue;
            };
            if state == State::Confirmed {
                continue;
            }
            tx.sql
                .confirm
                .execute(params![seq.get(), tx.now.timestamp_micros()])?;
            uncount(tx.totals, state);
            tx.totals.confirmed = tx.totals.confirmed.saturating_add(1);
            tx.totals.undelivered_bytes = tx.totals.undelivered_bytes.saturating_sub(size);
            changed = changed.saturating_add(1);
        }
        tx.counts.confirmed = tx.counts.confirmed.saturating_add(changed);
        Ok(changed)
    }
}

/// Records a failed publish of an entry: one more attempt, why, when to try next, and
/// whether it is held. Returns whether the entry was still waiting (a confirmed or
/// unknown entry is left alone).
#[derive(Debug)]
pub(crate) struct Defer {
    /// The entry.
    pub(crate) seq: Seq,
    /// Why the publish failed.
    pub(crate) error: String,
    /// When to try again.
    pub(crate) next_attempt_at: DateTime<Utc>,
    /// Pending, or held.
    pub(crate) state: Undelivered,
}

impl Op for Defer {
    type Output = bool;

    fn apply(&self, tx: &mut Tx<'_, '_>) -> Result<bool, Failure> {
        let Some((state, _)) = state_of(tx, self.seq)? else {
            return Ok(false);
        };
        if state == State::Confirmed {
            return Ok(false);
        }
        let error: String = self.error.chars().take(MAX_ERROR_CHARS).collect();
        let new_state = State::from(self.state);
        tx.sql.defer.execute(params![
            self.seq.get(),
            new_state.as_str(),
            error,
            self.next_attempt_at.timestamp_micros(),
        ])?;
        uncount(tx.totals, state);
        let count = match self.state {
            Undelivered::Pending => &mut tx.totals.pending,
            Undelivered::Held => &mut tx.totals.held,
        };
        *count = count.saturating_add(1);
        tx.counts.deferred = tx.counts.deferred.saturating_add(1);
        Ok(true)
    }
}

/// Deletes up to `limit` entries confirmed before `before`, oldest first; waiting
/// entries are never pruned. Returns how many went.
#[derive(Debug)]
pub(crate) struct Prune {
    /// Entries confirmed before this instant go.
    pub(crate) before: DateTime<Utc>,
    /// At most this many in one transaction, so that appends are not held up.
    pub(crate) limit: usize,
}

impl Op for Prune {
    type Output = u64;

    fn apply(&self, tx: &mut Tx<'_, '_>) -> Result<u64, Failure> {
        let limit = i64::try_from(self.limit).unwrap_or(i64::MAX);
        let mut rows = tx
            .sql
            .prune
            .query(params![self.before.timestamp_micros(), limit])?;
        let (mut count, mut bytes) = (0u64, 0u64);
        while let Some(row) = rows.next()? {
            let size: i64 = row.get(0)?;
            count = count.saturating_add(1);
            bytes = bytes.saturating_add(u64::try_from(size).unwrap_or(0));
        }
        drop(rows);
        tx.totals.confirmed = tx.totals.confirmed.saturating_sub(count);
        tx.totals.bytes = tx.totals.bytes.saturating_sub(bytes);
        tx.counts.pruned = tx.counts.pruned.saturating_add(count);
        Ok(count)
    }
}

/// Tests: runs one SQL statement on the writer's connection, in its transaction (such
/// as `PRAGMA max_page_count` to fake a full disk; it holds for that connection only).
/// Returns the first column of its rows, as text.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Sql(pub(crate) String);

#[cfg(test)]
impl Op for Sql {
    type Output = Vec<String>;

    fn apply(&self, tx: &mut Tx<'_, '_>) -> Result<Vec<String>, Failure> {
        use rusqlite::types::Value;
        let mut statement = tx.connection.prepare(&self.0)?;
        let mut rows = statement.query([])?;
        let mut column = Vec::new();
        while let Some(row) = rows.next()? {
            column.push(match row.get::<_, Value>(0)? {
                Value::Null => "NULL".to_owned(),
                Value::Integer(n) => n.to_string(),
                Value::Real(x) => x.to_string(),
                Value::Text(text) => text,
                Value::Blob(bytes) => format!("<{} bytes>", bytes.len()),
            });
        }
        Ok(column)
    }
}
