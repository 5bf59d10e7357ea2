//! Opening: the lock, the files' permissions, damaged and foreign files, reopening,
//! the read-only side.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::relay::journal::{
    Filter, JournalError, Options, Seq, State, open_read_only, queries, schema,
};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = TempDir::new("reopen");
    let journal = open(dir.path());
    let seqs = append_all(&journal, (1..=3).map(|n| entry("a.biapi.pro", n)).collect()).await;
    assert_eq!(journal.confirm(vec![seqs[0]]).await.unwrap(), 1);
    let totals = journal.totals();
    journal.close().await;

    let journal = open(dir.path());
    assert_eq!(journal.totals(), totals, "figures read back at open");
    let pending = journal.reader().pending(None, 10).await.unwrap();
    let seen: Vec<_> = pending
        .iter()
        .map(|e| (e.meta.seq, e.body.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (seqs[1], entry("a.biapi.pro", 2).body),
            (seqs[2], entry("a.biapi.pro", 3).body)
        ]
    );
    let stats = journal.reader().stats().await.unwrap();
    assert_eq!((stats.totals.pending, stats.totals.confirmed), (2, 1));
    // Seqs go on from where they were, never reused.
    let next = journal.append(entry("a.biapi.pro", 4)).await.unwrap().seq;
    assert!(next > seqs[2]);
    journal.close().await;
}

#[tokio::test]
async fn a_second_writer_is_refused_naming_the_holder() {
    let dir = TempDir::new("locked");
    let journal = open(dir.path());
    let error = Journal::open(dir.path(), Options::default()).unwrap_err();
    let JournalError::Locked { holder, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(holder.pid, Some(std::process::id()));
    let message = error.to_string();
    assert!(
        message.contains(&format!("process {}", std::process::id()))
            && message.contains("one writer per data_dir")
            && message.contains(&dir.path().join("journal.lock").display().to_string()),
        "{message}"
    );
    // The refused open changed nothing: the holder still writes.
    journal.append(entry("a.biapi.pro", 1)).await.unwrap();
    journal.close().await;
    // Released at close.
    open(dir.path()).close().await;
}

#[tokio::test]
async fn files_are_for_the_relays_user_only() {
    let base = TempDir::new("modes");
    let dir = base.path().join("data");
    let journal = open(&dir);
    journal.append(entry("a.biapi.pro", 1)).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    for name in [
        "journal.sqlite3",
        "journal.sqlite3-wal",
        "journal.sqlite3-shm",
        "journal.lock",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    journal.close().await;

    // A file made readable by others (copied in, restored from a backup) is fixed.
    let db = dir.join("journal.sqlite3");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let journal = open(&dir);
    assert_eq!(mode(&db), 0o600);
    journal.close().await;
}

/// Asserts that opening `dir` (for writing and for reading) fails with `Corrupt`
/// naming the file, and that the file is exactly as it was, with no log created.
fn assert_refused_untouched(dir: &Path) {
    let db = dir.join("journal.sqlite3");
    let before = std::fs::read(&db).unwrap();
    let error = Journal::open(dir, Options::default()).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&db.display().to_string()) && message.contains("move"),
        "{message}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file was changed");
    assert!(!dir.join("journal.sqlite3-wal").exists());
    let error = open_read_only(dir).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error:?}");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = TempDir::new("garbage");
    std::fs::create_dir_all(dir.path()).unwrap();
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("journal.sqlite3"), garbage).unwrap();
    assert_refused_untouched(dir.path());
}

#[tokio::test]
async fn a_damaged_page_is_refused_and_left_untouched() {
    let dir = TempDir::new("damaged");
    let journal = open(dir.path());
    let many = (1..=200).map(|n| sized("a.biapi.pro", n, 100)).collect();
    append_all(&journal, many).await;
    journal.close().await; // the last connection checkpoints the log into the file
    let db = dir.path().join("journal.sqlite3");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 3 * 4096);
    bytes[4096..3 * 4096].fill(0xa5); // pages 2 and 3; the header stays valid
    std::fs::write(&db, bytes).unwrap();
    let before = std::fs::read(&db).unwrap();
    let error = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(error, JournalError::Corrupt { .. }), "{error:?}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[tokio::test]
async fn an_unknown_schema_or_a_foreign_database_is_refused() {
    // 1: the layout of development builds that kept the bodies in `entries`.
    for version in [1, 99] {
        let dir = TempDir::new("schema");
        open(dir.path()).close().await;
        let db = dir.path().join("journal.sqlite3");
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(&format!("PRAGMA user_version = {version}"))
            .unwrap();
        let error = Journal::open(dir.path(), Options::default()).unwrap_err();
        assert!(
            matches!(
                error,
                JournalError::UnknownSchema { found, known: 2, .. } if found == version
            ),
            "{error:?}"
        );
        let said = error.to_string();
        assert!(said.contains("another version of the relay"), "{said}");
        assert!(said.contains("move it aside"), "{said}");
        let error = open_read_only(dir.path()).unwrap_err();
        assert!(matches!(
            error,
            JournalError::UnknownSchema { found, .. } if found == version
        ));
    }

    let other = TempDir::new("foreign");
    std::fs::create_dir_all(other.path()).unwrap();
    rusqlite::Connection::open(other.path().join("journal.sqlite3"))
        .unwrap()
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    let error = Journal::open(other.path(), Options::default()).unwrap_err();
    assert!(
        matches!(error, JournalError::UnknownSchema { found: 0, .. }),
        "{error:?}"
    );
}

#[test]
fn a_log_without_its_database_is_refused() {
    let dir = TempDir::new("stray");
    std::fs::create_dir_all(dir.path()).unwrap();
    let wal = dir.path().join("journal.sqlite3-wal");
    std::fs::write(&wal, b"frames of a lost database").unwrap();
    let error = Journal::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(error, JournalError::StrayLog { .. }), "{error:?}");
    assert!(error.to_string().contains(&wal.display().to_string()));
    assert!(!dir.path().join("journal.sqlite3").exists());
}

#[test]
fn read_only_needs_a_journal() {
    let dir = TempDir::new("missing");
    let error = open_read_only(dir.path()).unwrap_err();
    assert!(matches!(error, JournalError::Missing { .. }), "{error:?}");
    assert!(!dir.path().exists(), "a read-only open creates nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_reads_while_the_writer_holds_the_lock_and_writes() {
    let dir = TempDir::new("readers");
    let journal = open(dir.path());
    let reader = open_read_only(dir.path()).unwrap();
    let writing = {
        let journal = journal.clone();
        tokio::spawn(async move {
            for n in 1..=100 {
                journal.append(entry("a.biapi.pro", n)).await.unwrap();
            }
        })
    };
    let mut last = 0;
    while !writing.is_finished() {
        let stats = reader.stats().await.unwrap();
        let listed = reader.list(&Filter::default()).await.unwrap();
        assert!(
            stats.totals.pending >= last,
            "{} after {last}",
            stats.totals.pending
        );
        assert!(
            listed.len() as u64 >= stats.totals.pending,
            "a later read sees no less"
        );
        last = stats.totals.pending;
    }
    writing.await.unwrap();
    assert_eq!(reader.stats().await.unwrap().totals.pending, 100);
    journal.close().await;
    // And once the writer is gone (its log checkpointed and removed).
    let listed = reader.list(&Filter::default()).await.unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(listed[99].state, State::Pending);
    let fresh = open_read_only(dir.path()).unwrap();
    assert_eq!(fresh.stats().await.unwrap().totals.pending, 100);
}

#[tokio::test]
async fn a_value_out_of_range_is_reported_not_guessed() {
    let dir = TempDir::new("invalid");
    let journal = open(dir.path());
    let seq = journal.append(entry("a.biapi.pro", 1)).await.unwrap().seq;
    journal.close().await;
    let path = dir.path().join("journal.sqlite3");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE entries SET attempts = -1 WHERE seq = ?1",
            [seq.get()],
        )
        .unwrap();
    let error = open_read_only(dir.path())
        .unwrap()
        .list(&Filter::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, JournalError::Invalid { seq: Seq(s), column: "attempts", .. } if s == seq.get()),
        "{error:?}"
    );
    // A body missing (deleted by hand): the drain and the payload listing say so
    // rather than publish an empty message.
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .execute(
            "UPDATE entries SET attempts = 0 WHERE seq = ?1",
            [seq.get()],
        )
        .unwrap();
    writer
        .execute("DELETE FROM bodies WHERE seq = ?1", [seq.get()])
        .unwrap();
    drop(writer);
    let reader = open_read_only(dir.path()).unwrap();
    let missing = |error: JournalError| matches!(error, JournalError::Invalid { seq: Seq(s), column: "body", .. } if s == seq.get());
    assert!(missing(reader.pending(None, 10).await.unwrap_err()));
    assert!(missing(
        reader
            .list_with_bodies(&Filter::default())
            .await
            .unwrap_err()
    ));
    assert_eq!(reader.list(&Filter::default()).await.unwrap().len(), 1);
    // The figures come from the indexes and still read.
    let paths = crate::relay::journal::files::Paths::new(dir.path());
    let connection = schema::open_reader(&paths).unwrap();
    assert_eq!(queries::totals(&connection, &paths).unwrap().pending, 1);
}
