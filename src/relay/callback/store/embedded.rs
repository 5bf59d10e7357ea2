//! The embedded store: one SQLite file, shared by every process of the host that opens
//! it (write-ahead log, a busy time-out for concurrent writers).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};

use super::{BackendError, CallbackStore, Lookup, StoreError};
use crate::relay::callback::state::{CallbackRecord, CallbackState};

/// How long a write waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded store. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddedStore {
    connection: Arc<Mutex<Connection>>,
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(BackendError::new(error))
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`, creating its directory.
    ///
    /// # Errors
    /// [`StoreError::Open`].
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let open = || -> Result<Connection, BackendError> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(BackendError::new)?;
            }
            let connection = Connection::open(path).map_err(BackendError::new)?;
            connection
                .busy_timeout(BUSY_TIMEOUT)
                .map_err(BackendError::new)?;
            connection
                .execute_batch(
                    "PRAGMA journal_mode = WAL;
                     CREATE TABLE IF NOT EXISTS callbacks (
                         state TEXT PRIMARY KEY,
                         record TEXT NOT NULL,
                         expires_at INTEGER
                     );
                     CREATE INDEX IF NOT EXISTS callbacks_expires_at ON callbacks (expires_at);",
                )
                .map_err(BackendError::new)?;
            Ok(connection)
        };
        // Switching to WAL takes an exclusive lock without SQLite's busy handler: when
        // several processes (listener, dispatcher) open the file at once, one may get
        // SQLITE_BUSY there. Try again for up to the busy time-out.
        let started = std::time::Instant::now();
        let connection = loop {
            match open() {
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                done => {
                    break done.map_err(|source| StoreError::Open {
                        path: path.to_owned(),
                        source,
                    })?;
                }
            }
        };
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` on the connection, on a blocking thread (SQLite waits on the file).
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(&connection)
        })
        .await
        .map_err(|e| StoreError::Backend(BackendError::new(e)))?
    }
}

/// The record read from `text`, unless it is unreadable or expired at `now`.
fn live(text: Option<String>, now: DateTime<Utc>) -> Option<CallbackRecord> {
    CallbackRecord::from_json(text?.as_bytes()).filter(|r| !r.is_expired(now))
}

impl CallbackStore for EmbeddedStore {
    fn read<'a>(
        &'a self,
        state: &'a CallbackState,
        lookup: Lookup,
    ) -> BoxFuture<'a, Result<Option<CallbackRecord>, StoreError>> {
        let key = state.as_str().to_owned();
        Box::pin(self.with(move |connection| {
            let sql = if lookup.take {
                "DELETE FROM callbacks WHERE state = ?1 RETURNING record"
            } else {
                "SELECT record FROM callbacks WHERE state = ?1"
            };
            let text: Option<String> = connection
                .query_row(sql, params![key], |row| row.get(0))
                .optional()
                .map_err(backend)?;
            let found = text.is_some();
            let record = live(text, lookup.now);
            if found && record.is_none() && !lookup.take {
                connection
                    .execute("DELETE FROM callbacks WHERE state = ?1", params![key])
                    .map_err(backend)?;
            }
            Ok(record)
        }))
    }

    fn put<'a>(
        &'a self,
        state: &'a CallbackState,
        record: &'a CallbackRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let key = state.as_str().to_owned();
        let text = record.to_json();
        let expires_at = record.expires_at.map(|at| at.timestamp_micros());
        Box::pin(self.with(move |connection| {
            let text = text.map_err(|e| StoreError::Backend(BackendError::new(e)))?;
            // Expired records go as new ones come, so that the file does not grow.
            connection
                .execute(
                    "DELETE FROM callbacks WHERE expires_at <= ?1",
                    params![Utc::now().timestamp_micros()],
                )
                .map_err(backend)?;
            connection
                .execute(
                    "INSERT OR REPLACE INTO callbacks (state, record, expires_at) VALUES (?1, ?2, ?3)",
                    params![key, text, expires_at],
                )
                .map_err(backend)?;
            Ok(())
        }))
    }
}

/// Whether `error` is SQLite's "database is locked".
fn is_busy(error: &BackendError) -> bool {
    matches!(
        error.0.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy
    )
}
