//! The journal's files under `data_dir`, and their permissions: webhooks carry bank
//! data, so only the relay's user may read them.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::JournalError;

/// The database, under `data_dir`.
pub(crate) const DB_FILE: &str = "journal.sqlite3";

/// The lock file naming the writer, under `data_dir`.
pub(crate) const LOCK_FILE: &str = "journal.lock";

/// The files' mode: the relay's user only.
const FILE_MODE: u32 = 0o600;

/// A directory the relay creates: the relay's user only.
const DIR_MODE: u32 = 0o700;

/// Where a journal's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paths {
    /// `data_dir`.
    pub(crate) dir: PathBuf,
    /// The database.
    pub(crate) db: PathBuf,
    /// SQLite's write-ahead log.
    pub(crate) wal: PathBuf,
    /// SQLite's shared-memory index of the log.
    pub(crate) shm: PathBuf,
    /// The writer's lock.
    pub(crate) lock: PathBuf,
}

impl Paths {
    /// The files of the journal in `dir`.
    pub(crate) fn new(dir: &Path) -> Self {
        let db = dir.join(DB_FILE);
        let beside = |suffix: &str| {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            dir: dir.to_owned(),
            wal: beside("-wal"),
            shm: beside("-shm"),
            lock: dir.join(LOCK_FILE),
            db,
        }
    }

    /// The bytes the database and its log take on disk.
    pub(crate) fn file_bytes(&self) -> u64 {
        [&self.db, &self.wal]
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .fold(0, |sum, meta| sum.saturating_add(meta.len()))
    }
}

/// Creates `dir` (and its parents) for the relay's user only, unless it exists; an
/// existing directory keeps its mode (it is the operator's).
pub(crate) fn create_dir(dir: &Path) -> Result<(), JournalError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|source| JournalError::Directory {
            path: dir.to_owned(),
            source,
        })
}

/// Creates the empty file `path` with the relay's user's permissions, before SQLite
/// opens it (SQLite would create it with the umask's mode, and gives its `-wal` and
/// `-shm` files the database's mode). Returns whether it was created.
pub(crate) fn create_private(path: &Path) -> Result<bool, JournalError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(JournalError::File {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Takes read and write access away from everyone but the relay's user on `path`, if
/// it exists and anyone else has some (a file copied in, or created by an older
/// relay). Returns whether it changed the mode.
pub(crate) fn make_private(path: &Path) -> Result<bool, JournalError> {
    let error = |source| JournalError::File {
        path: path.to_owned(),
        source,
    };
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(error(e)),
    };
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, Permissions::from_mode(mode & 0o700)).map_err(error)?;
    tracing::warn!(
        file = %path.display(),
        mode = format_args!("{:o}", mode & 0o777),
        "the journal's file was readable by other users; now the relay's user only"
    );
    Ok(true)
}
