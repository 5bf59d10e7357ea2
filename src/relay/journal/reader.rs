//! The read side: read-only connections, no lock, so that reads never wait for the
//! writer's commits and work while another process writes (WAL: a read sees the last
//! commit as of its start).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::entry::{Entry, EntryMeta, Filter, RecentId, Seq, Stats};
use super::error::{JournalError, SqlError};
use super::files::Paths;
use super::{queries, schema};

/// Idle read connections kept for the next read.
const IDLE_READERS: usize = 4;

/// Opens the journal in `dir` for reading only, without the lock: for `journal stats`
/// and `journal list` while `serve` writes. Checks the schema version, not the whole
/// file (the writer did at its start).
///
/// # Errors
/// [`JournalError::Missing`] when there is no journal; `Corrupt`, `UnknownSchema`,
/// `Open`.
pub(crate) fn open_read_only(dir: &Path) -> Result<Reader, JournalError> {
    Reader::open(Paths::new(dir))
}

/// Reads of the journal, each on a read-only connection on a blocking thread. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    inner: Arc<ReaderInner>,
}

#[derive(Debug)]
struct ReaderInner {
    paths: Paths,
    /// Connections between reads (a read opens one when none is idle).
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    /// Opens a first connection, which checks the file.
    pub(crate) fn open(paths: Paths) -> Result<Self, JournalError> {
        let first = schema::open_reader(&paths)?;
        Ok(Self {
            inner: Arc::new(ReaderInner {
                paths,
                idle: Mutex::new(vec![first]),
            }),
        })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.inner.paths.db
    }

    /// Closes the idle connections (at the writer's close).
    pub(crate) fn forget_idle(&self) {
        let idle = std::mem::take(
            &mut *self
                .inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        drop(idle);
    }

    /// Runs `work` on a read connection, on a blocking thread (SQLite waits on the
    /// disk).
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Paths) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let inner = self.inner.clone();
        let path = inner.paths.db.clone();
        tokio::task::spawn_blocking(move || {
            let idle = inner
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let connection = match idle {
                Some(connection) => connection,
                None => schema::open_reader(&inner.paths)?,
            };
            let result = work(&connection, &inner.paths);
            let mut idle = inner.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < IDLE_READERS {
                idle.push(connection);
            }
            result
        })
        .await
        .map_err(|e| JournalError::Read {
            path,
            source: SqlError::new(e),
        })?
    }

    /// Up to `limit` waiting entries (pending and held) after `after`, in `seq` order,
    /// with their bodies: the drain's batches.
    ///
    /// # Errors
    /// [`JournalError::Read`], or [`JournalError::Invalid`] for a damaged value.
    pub(crate) async fn pending(
        &self,
        after: Option<Seq>,
        limit: usize,
    ) -> Result<Vec<Entry>, JournalError> {
        self.with(move |c, paths| queries::pending(c, paths, after, limit))
            .await
    }

    /// The routing keys that have waiting entries, with how many (their new webhooks
    /// queue behind them, to keep each key's order).
    ///
    /// # Errors
    /// [`JournalError::Read`].
    pub(crate) async fn waiting_per_key(&self) -> Result<Vec<(String, u64)>, JournalError> {
        self.with(queries::waiting_per_key).await
    }

    /// The journal's figures, as of the last commit.
    ///
    /// # Errors
    /// [`JournalError::Read`] or [`JournalError::Invalid`].
    pub(crate) async fn stats(&self) -> Result<Stats, JournalError> {
        self.with(queries::stats).await
    }

    /// The entries `filter` selects, in `seq` order, without bodies.
    ///
    /// # Errors
    /// [`JournalError::Read`] or [`JournalError::Invalid`].
    pub(crate) async fn list(&self, filter: &Filter) -> Result<Vec<EntryMeta>, JournalError> {
        let filter = filter.clone();
        let rows = self
            .with(move |c, paths| queries::list(c, paths, &filter, false))
            .await?;
        Ok(rows.into_iter().map(|(meta, _)| meta).collect())
    }

    /// The entries `filter` selects, in `seq` order, with their bodies (`journal list
    /// --payload`, `journal replay`).
    ///
    /// # Errors
    /// [`JournalError::Read`] or [`JournalError::Invalid`].
    pub(crate) async fn list_with_bodies(
        &self,
        filter: &Filter,
    ) -> Result<Vec<Entry>, JournalError> {
        let filter = filter.clone();
        let rows = self
            .with(move |c, paths| queries::list(c, paths, &filter, true))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(meta, body)| Entry {
                meta,
                body: body.unwrap_or_default(),
            })
            .collect())
    }

    /// The webhooks (with an `id_webhook_data`) received since `since`, whatever their
    /// state: to fill the duplicate check at start.
    ///
    /// # Errors
    /// [`JournalError::Read`].
    pub(crate) async fn recent_ids(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RecentId>, JournalError> {
        self.with(move |c, paths| queries::recent_ids(c, paths, since))
            .await
    }
}
