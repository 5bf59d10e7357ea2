//! What can go wrong, in words an operator can act on; every message names the file.

use std::path::PathBuf;
use std::sync::Arc;

use super::entry::Seq;
use super::lock::Holder;

/// An error of SQLite (or of the thread that ran it), as text: which crate reported it
/// is not part of the journal's API. Cloneable, since one failed commit answers every
/// request of its batch.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SqlError(Arc<dyn std::error::Error + Send + Sync>);

impl SqlError {
    pub(crate) fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }

    /// SQLite's result code, when SQLite reported the error.
    pub(crate) fn code(&self) -> Option<rusqlite::ErrorCode> {
        self.0
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
    }

    /// Whether the disk (or the file's page limit) is full: SQLite rolled the write
    /// back and the journal is intact.
    #[cfg(test)]
    pub(crate) fn is_disk_full(&self) -> bool {
        self.code() == Some(rusqlite::ErrorCode::DiskFull)
    }

    /// Whether SQLite says the file is not a database or is damaged.
    pub(crate) fn is_corrupt(&self) -> bool {
        matches!(
            self.code(),
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
        )
    }
}

impl From<rusqlite::Error> for SqlError {
    fn from(error: rusqlite::Error) -> Self {
        Self::new(error)
    }
}

/// What `PRAGMA quick_check` found wrong, in its words.
#[derive(Debug, thiserror::Error)]
#[error("SQLite's integrity check reports: {0}")]
pub(crate) struct CheckFailed(pub(crate) String);

/// Why the journal cannot be opened or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum JournalError {
    /// `data_dir` cannot be created.
    #[error(
        "cannot create the journal's directory {path}: {source} (check data_dir and that \
         the relay's user may write there)"
    )]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file of the journal cannot be created, opened, locked or given its permissions.
    #[error("cannot use {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Another writer holds the directory.
    #[error(
        "the journal in {} is used by {holder}; one writer per data_dir (lock file {}): stop \
         that process, or give this relay another data_dir",
        path.parent().unwrap_or(path).display(),
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who wrote it.
        holder: Holder,
    },
    /// The file is not a database or is damaged.
    #[error(
        "{path} is not a usable journal: {source}. It may still hold undelivered webhooks: \
         stop the relay, move {path} and its -wal and -shm files aside together (keep them \
         for recovery), then start again to create an empty journal"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite found.
        source: SqlError,
    },
    /// The file is a database of another layout (another relay version's, or not a
    /// journal).
    #[error(
        "{path} has schema version {found}, but this relay reads version {known}: it was \
         written by another version of the relay or is not a journal. Run the relay that \
         wrote it (until it has drained), or move it aside (with its -wal and -shm files) \
         and start again to create an empty journal"
    )]
    UnknownSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The version this relay reads and writes.
        known: i64,
    },
    /// A write-ahead log without its database: opening would apply it to a new file.
    #[error(
        "{path} exists without its database: it may hold undelivered webhooks. Move it \
         aside (keep it for recovery) and start again"
    )]
    StrayLog {
        /// The `-wal` file.
        path: PathBuf,
    },
    /// A read-only open found no journal.
    #[error(
        "there is no journal at {path}: check data_dir (the relay creates it on its first \
         start with the journal on)"
    )]
    Missing {
        /// The database file looked for.
        path: PathBuf,
    },
    /// SQLite could not open or set up the file.
    #[error("cannot open the journal {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: SqlError,
    },
    /// A query failed.
    #[error("cannot read the journal {path}: {source}")]
    Read {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: SqlError,
    },
    /// A stored value is out of its range (a file edited by hand, or damaged).
    #[error("the journal {path} holds an invalid {column} in entry {seq}")]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// The entry.
        seq: Seq,
        /// The column.
        column: &'static str,
    },
    /// The writer thread could not be started.
    #[error("cannot start the journal's writer thread: {source}")]
    Thread {
        /// What failed.
        source: std::io::Error,
    },
    /// A confirm or a defer was not committed.
    #[error("cannot write to the journal {path}: {source}")]
    Write {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: WriteError,
    },
}

/// Why an append was not committed. Every variant means "not in the journal": the
/// relay answers 503 and Powens tries again.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum AppendError {
    /// Pending and held entries alone would exceed `journal_max_bytes`.
    #[error(
        "the journal is full: its undelivered webhooks would exceed journal_max_bytes \
         ({max_bytes} bytes)"
    )]
    Full {
        /// The limit.
        max_bytes: u64,
    },
    /// The write failed (a full disk, an I/O error: SQLite rolled it back and the
    /// journal is intact), or the journal was closed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Why a confirm, defer or prune was not committed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum WriteError {
    /// The write failed (a full disk, an I/O error); SQLite rolled it back.
    #[error("cannot write to the journal {path}: {source}")]
    Disk {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: SqlError,
    },
    /// The journal was closed.
    #[error("the journal is closed")]
    Closed,
}
