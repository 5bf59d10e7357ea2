//! Opening the database: the checks that refuse a damaged or foreign file, the
//! durability settings, and the schema.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::error::{CheckFailed, JournalError, SqlError};
use super::files::Paths;

/// The layout this relay reads and writes (`PRAGMA user_version`); 0 is a new file.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// How long a statement waits for a lock SQLite itself takes (a reader recovering the
/// log's index, a checkpoint): the journal has one writer, so only briefly.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// After a checkpoint, the log is cut back to this size, so that one burst does not
/// keep its size on disk for good.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The schema. The bodies live in a table of their own, written once: a change of an
/// entry's state (its confirm, a failed attempt) rewrites the pages of small rows, not
/// those of the bodies beside them (with ~1 KiB bodies inline, a confirm rewrote a
/// 4 KiB page for every three entries, and the drain's commits were the writer's main
/// work), and queries that do not read the bodies (counts, sums, listings without
/// payloads) never load them. A trigger deletes an entry's body with it. The partial
/// indexes hold only what their queries look at: waiting entries (few, but read on
/// every drain round, by `seq`; covering for counts and per-key lookups) and confirmed
/// ones by confirm time (pruning and the byte limit drop the oldest first; covering
/// for sums).
///
/// Version 1 (development builds before the first release) kept the body in
/// `entries`; it is refused as any other version is.
const SCHEMA: &str = "
    CREATE TABLE entries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        exchange TEXT NOT NULL,
        routing_key TEXT NOT NULL,
        event TEXT,
        id_webhook_data INTEGER,
        state TEXT NOT NULL CHECK (state IN ('pending', 'held', 'confirmed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at INTEGER,
        confirmed_at INTEGER,
        size INTEGER NOT NULL
    );
    CREATE TABLE bodies (
        seq INTEGER PRIMARY KEY,
        body BLOB NOT NULL
    );
    CREATE TRIGGER entries_bodies AFTER DELETE ON entries BEGIN
        DELETE FROM bodies WHERE seq = OLD.seq;
    END;
    CREATE INDEX entries_undelivered ON entries (seq, state, received_at, size, routing_key)
        WHERE state <> 'confirmed';
    CREATE INDEX entries_confirmed ON entries (confirmed_at, size)
        WHERE state = 'confirmed';
    CREATE INDEX entries_received ON entries (received_at);
    CREATE INDEX entries_webhook ON entries (id_webhook_data, routing_key)
        WHERE id_webhook_data IS NOT NULL;
";

/// Opens the writer's connection on the (existing) database file: checks it, switches
/// it to WAL with full sync, creates the schema in a new file.
///
/// Nothing is written before the checks pass, so that a damaged file is left exactly
/// as found for recovery.
pub(crate) fn open_writer(paths: &Paths) -> Result<Connection, JournalError> {
    let path = &paths.db;
    let open_error = |e: rusqlite::Error| JournalError::Open {
        path: path.clone(),
        source: e.into(),
    };
    // Never SQLITE_OPEN_CREATE: the caller created the file with its mode, and a file
    // that vanished in between must not come back empty.
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    let version = check(&connection, paths, true)?;
    let settings = || -> Result<(), JournalError> {
        let sql = |e: rusqlite::Error| classify(paths, e);
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
            .map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // A file system without shared memory (some network file systems).
            return Err(JournalError::Open {
                path: path.clone(),
                source: SqlError::new(NoWal(mode)),
            });
        }
        // FULL: the log is fsync'd at every commit, so a committed entry survives a
        // power cut, not only a crash of the relay (NORMAL in WAL mode may lose the last
        // commits).
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        connection
            .pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(sql)?;
        if version == 0 {
            connection
                .execute_batch(&format!(
                    "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                ))
                .map_err(sql)?;
        }
        Ok(())
    };
    settings()?;
    Ok(connection)
}

/// SQLite could not switch the file to write-ahead logging.
#[derive(Debug, thiserror::Error)]
#[error("SQLite kept journal_mode {0} instead of wal (is data_dir on a local file system?)")]
struct NoWal(String);

/// Opens a read-only connection. Takes no lock: WAL lets it read the last commit while
/// the writer writes.
pub(crate) fn open_reader(paths: &Paths) -> Result<Connection, JournalError> {
    let path = &paths.db;
    if !path.exists() {
        return Err(JournalError::Missing { path: path.clone() });
    }
    let open_error = |e: rusqlite::Error| JournalError::Open {
        path: path.clone(),
        source: e.into(),
    };
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_error)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    // No quick_check here: it reads the whole file, and the writer ran it at its start;
    // a damaged page is reported by the query that meets it.
    match check(&connection, paths, false)? {
        SCHEMA_VERSION => Ok(connection),
        found => Err(JournalError::UnknownSchema {
            path: path.clone(),
            found,
            known: SCHEMA_VERSION,
        }),
    }
}

/// Checks that the file is a journal SQLite can read: its schema version (0 for a new,
/// empty file, else [`SCHEMA_VERSION`]) and, with `quick`, SQLite's quick integrity
/// check. Returns the version.
fn check(connection: &Connection, paths: &Paths, quick: bool) -> Result<i64, JournalError> {
    let path = &paths.db;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| classify(paths, e))?;
    if quick {
        let mut problems = Vec::new();
        connection
            .pragma_query(None, "quick_check", |row| {
                problems.push(row.get::<_, String>(0)?);
                Ok(())
            })
            .map_err(|e| classify(paths, e))?;
        if problems != ["ok"] {
            problems.truncate(5);
            return Err(JournalError::Corrupt {
                path: path.clone(),
                source: SqlError::new(CheckFailed(problems.join("; "))),
            });
        }
    }
    let objects: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| classify(paths, e))?;
    match version {
        // A new file holds nothing; anything else with version 0 is not ours.
        0 if objects == 0 => Ok(0),
        SCHEMA_VERSION => Ok(version),
        found => Err(JournalError::UnknownSchema {
            path: path.clone(),
            found,
            known: SCHEMA_VERSION,
        }),
    }
}

/// A damaged or foreign file is [`JournalError::Corrupt`]; anything else (permissions,
/// a full disk) is [`JournalError::Open`].
fn classify(paths: &Paths, error: rusqlite::Error) -> JournalError {
    let source = SqlError::from(error);
    let path = paths.db.clone();
    if source.is_corrupt() {
        JournalError::Corrupt { path, source }
    } else {
        JournalError::Open { path, source }
    }
}
