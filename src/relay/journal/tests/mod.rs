//! The journal's tests, by area; each works in a directory of its own under the
//! system's temporary directory, removed at the end.

mod files;
mod limits;
mod read;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Journal, Message, NewEntry, Options, Undelivered};

/// A directory for one test, removed when dropped.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("powens-journal-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How many entries and how many bodies the journal in `dir` holds, read beside its
/// writer (they must go together: a body left behind would grow the file for good).
pub(super) fn rows(dir: &Path) -> (i64, i64) {
    let connection = rusqlite::Connection::open_with_flags(
        dir.join("journal.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    connection
        .query_row(
            "SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM bodies)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// An instant `secs` after a fixed origin.
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

/// Webhook `n` for domain `key`, received at `at(n)`, with a body of its own.
pub(super) fn entry(key: &str, n: i64) -> NewEntry {
    NewEntry {
        message_id: format!("msg-{key}-{n}"),
        received_at: at(n),
        exchange: "powens_domain_webhooks".to_owned(),
        routing_key: key.to_owned(),
        event: Some("USER_SYNCED".to_owned()),
        id_webhook_data: Some(n),
        state: Undelivered::Pending,
        next_attempt_at: None,
        body: format!("{{\"id_webhook_data\":{n},\"domain\":\"{key}\"}}").into_bytes(),
    }
}

/// `entry(key, n)` with a body of `size` bytes.
pub(super) fn sized(key: &str, n: i64, size: usize) -> NewEntry {
    NewEntry {
        body: vec![b'x'; size],
        ..entry(key, n)
    }
}

pub(super) fn open(dir: &Path) -> Journal {
    Journal::open(dir, Options::default()).unwrap()
}

/// Stops the writer until the returned sender is dropped, so that requests queue up
/// behind it and go into one batch.
pub(super) async fn pause(journal: &Journal) -> std::sync::mpsc::Sender<()> {
    let (release, until) = std::sync::mpsc::channel();
    journal.send(Message::Pause(until)).await;
    release
}

/// Waits until `n` requests wait for the writer.
pub(super) async fn until_queued(journal: &Journal, n: usize) {
    for _ in 0..10_000 {
        if journal.queued() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("only {} of {n} requests queued", journal.queued());
}

/// Appends `entries` in their order, queued together so that they share commits.
pub(super) async fn append_all(journal: &Journal, entries: Vec<NewEntry>) -> Vec<super::Seq> {
    let mut answers = Vec::new();
    for entry in entries {
        answers.push(journal.queue(super::ops::Append(entry)).await);
    }
    let mut seqs = Vec::new();
    for answer in answers {
        seqs.push(answer.await.unwrap().unwrap().seq);
    }
    seqs
}
