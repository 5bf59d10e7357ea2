//! The writer's SQL, prepared once for the writer's life (parsing it again for each
//! request would cost a good part of a batched append).

use rusqlite::{Connection, Statement};

/// The writer's prepared statements, for its whole life.
#[derive(Debug)]
pub(crate) struct Statements<'c> {
    /// Starts the batch's transaction (`IMMEDIATE`: it writes).
    pub(crate) begin: Statement<'c>,
    /// Commits it: one fsync.
    pub(crate) commit: Statement<'c>,
    /// Rolls it back.
    pub(crate) rollback: Statement<'c>,
    /// Starts a request's savepoint.
    pub(crate) savepoint: Statement<'c>,
    /// Ends it, keeping its changes.
    pub(crate) release: Statement<'c>,
    /// Undoes its changes (it still needs a release).
    pub(crate) rollback_to: Statement<'c>,
    /// Inserts an entry, without its body (see [`super::ops`] for the parameters).
    pub(crate) insert: Statement<'c>,
    /// Inserts the body `?2` of entry `?1`.
    pub(crate) insert_body: Statement<'c>,
    /// `state, size` of entry `?1`.
    pub(crate) state_of: Statement<'c>,
    /// Marks entry `?1` confirmed at `?2`.
    pub(crate) confirm: Statement<'c>,
    /// Records a failed attempt on entry `?1`: state `?2`, error `?3`, next at `?4`.
    pub(crate) defer: Statement<'c>,
    /// `seq, size` of confirmed entries, oldest confirm first.
    pub(crate) oldest_confirmed: Statement<'c>,
    /// Deletes entry `?1` (and its body, by the schema's trigger).
    pub(crate) delete: Statement<'c>,
    /// Deletes up to `?2` entries confirmed before `?1`, returning their sizes.
    pub(crate) prune: Statement<'c>,
}

impl<'c> Statements<'c> {
    /// Prepares them all.
    pub(crate) fn prepare(c: &'c Connection) -> rusqlite::Result<Self> {
        Ok(Self {
            begin: c.prepare("BEGIN IMMEDIATE")?,
            commit: c.prepare("COMMIT")?,
            rollback: c.prepare("ROLLBACK")?,
            savepoint: c.prepare("SAVEPOINT request")?,
            release: c.prepare("RELEASE request")?,
            rollback_to: c.prepare("ROLLBACK TO request")?,
            insert: c.prepare(
                "INSERT INTO entries (message_id, received_at, exchange, routing_key, event,
                     id_webhook_data, state, next_attempt_at, size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            insert_body: c.prepare("INSERT INTO bodies (seq, body) VALUES (?1, ?2)")?,
            state_of: c.prepare("SELECT state, size FROM entries WHERE seq = ?1")?,
            confirm: c.prepare(
                "UPDATE entries SET state = 'confirmed', confirmed_at = ?2, next_attempt_at = NULL
                 WHERE seq = ?1",
            )?,
            defer: c.prepare(
                "UPDATE entries SET state = ?2, attempts = attempts + 1, last_error = ?3,
                     next_attempt_at = ?4
                 WHERE seq = ?1",
            )?,
            oldest_confirmed: c.prepare(
                "SELECT seq, size FROM entries WHERE state = 'confirmed'
                 ORDER BY confirmed_at, seq",
            )?,
            delete: c.prepare("DELETE FROM entries WHERE seq = ?1")?,
            prune: c.prepare(
                "DELETE FROM entries WHERE seq IN (
                     SELECT seq FROM entries WHERE state = 'confirmed' AND confirmed_at < ?1
                     ORDER BY confirmed_at LIMIT ?2)
                 RETURNING size",
            )?,
        })
    }
}
