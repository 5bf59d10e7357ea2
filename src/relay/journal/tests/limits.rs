//! Limits and faults: the byte limit, a full disk, a request that fails among others.

use super::*;
use crate::relay::journal::request::Failure;
use crate::relay::journal::{AppendError, Totals, WriteError};

#[tokio::test]
async fn the_byte_limit_drops_the_oldest_confirmed_first_and_never_a_pending_one() {
    let dir = TempDir::new("limit");
    let journal = Journal::open(dir.path(), Options { max_bytes: 1000 }).unwrap();
    let k = "a.biapi.pro";
    let seqs = append_all(&journal, (1..=3).map(|n| sized(k, n, 300)).collect()).await;
    // Confirmed in the order 2, 1: entry 2 is the oldest confirm.
    journal.confirm(vec![seqs[1]]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    journal.confirm(vec![seqs[0]]).await.unwrap();

    let appended = journal.append(sized(k, 4, 300)).await.unwrap();
    assert_eq!((appended.dropped, appended.dropped_bytes), (1, 300));
    let left: Vec<_> = journal.reader().list(&Default::default()).await.unwrap();
    let left: Vec<_> = left.iter().map(|e| e.seq).collect();
    assert_eq!(left, vec![seqs[0], seqs[2], appended.seq]);
    assert_eq!(journal.totals().bytes, 900);
    assert_eq!(
        (journal.counters().dropped, journal.counters().dropped_bytes),
        (1, 300)
    );

    // Pending: 600 bytes. 500 more would need a pending entry to go: refused, and the
    // confirmed one is not dropped for nothing.
    let error = journal.append(sized(k, 5, 500)).await.unwrap_err();
    assert!(
        matches!(error, AppendError::Full { max_bytes: 1000 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("journal_max_bytes"));
    assert_eq!(
        journal
            .reader()
            .list(&Default::default())
            .await
            .unwrap()
            .len(),
        3
    );
    // 400 fits once the last confirmed entry goes; exactly at the limit.
    let appended = journal.append(sized(k, 6, 400)).await.unwrap();
    assert_eq!(appended.dropped, 1);
    assert_eq!(
        journal.totals(),
        Totals {
            pending: 3,
            held: 0,
            confirmed: 0,
            bytes: 1000,
            undelivered_bytes: 1000
        }
    );
    // Full now, for any size; a body larger than the limit always.
    assert!(matches!(
        journal.append(sized(k, 7, 1)).await,
        Err(AppendError::Full { .. })
    ));
    let pending = journal.reader().pending(None, 10).await.unwrap();
    assert_eq!(pending.len(), 3, "no pending entry was ever dropped");
    assert_eq!(
        rows(dir.path()),
        (3, 3),
        "a dropped entry's body went with it"
    );
    journal.close().await;
}

/// The writer's connection may not grow the file: a full disk, for this connection.
async fn fill_the_disk(journal: &Journal) {
    journal
        .writer_sql("PRAGMA max_page_count = 1")
        .await
        .unwrap(); // floors at its size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_write_and_keeps_the_journal() {
    let dir = TempDir::new("disk");
    let journal = open(dir.path());
    let k = "a.biapi.pro";
    let seqs = append_all(&journal, (1..=5).map(|n| entry(k, n)).collect()).await;
    fill_the_disk(&journal).await;

    let error = journal.append(sized(k, 6, 256 * 1024)).await.unwrap_err();
    let AppendError::Write(WriteError::Disk { source, path }) = &error else {
        panic!("{error:?}");
    };
    assert!(source.is_disk_full(), "{source}");
    assert_eq!(path, &dir.path().join("journal.sqlite3"));
    // In one batch with a failing append, the other requests still commit.
    let release = pause(&journal).await;
    let commits = journal.counters().commits;
    let (confirm, big, small, ()) = tokio::join!(
        journal.confirm(vec![seqs[0]]),
        journal.append(sized(k, 7, 256 * 1024)),
        journal.append(entry(k, 8)),
        async {
            until_queued(&journal, 3).await;
            drop(release);
        }
    );
    assert_eq!(confirm.unwrap(), 1);
    assert!(
        matches!(big, Err(AppendError::Write(WriteError::Disk { .. }))),
        "{big:?}"
    );
    let small = small.unwrap().seq;
    assert_eq!(journal.counters().commits, commits + 1);

    // Space again: appends work, nothing was lost.
    journal
        .writer_sql("PRAGMA max_page_count = 1073741823")
        .await
        .unwrap();
    let big = journal.append(sized(k, 9, 256 * 1024)).await.unwrap().seq;
    journal.close().await;
    let journal = open(dir.path());
    let pending: Vec<_> = journal.reader().pending(None, 100).await.unwrap();
    let pending: Vec<_> = pending.iter().map(|e| e.meta.seq).collect();
    assert_eq!(pending, [&seqs[1..], &[small, big]].concat());
    journal.close().await;
}

#[tokio::test]
async fn a_request_that_fails_midway_is_rolled_back_alone() {
    let dir = TempDir::new("midway");
    let journal = Journal::open(dir.path(), Options { max_bytes: 1000 }).unwrap();
    let k = "a.biapi.pro";
    let seqs = append_all(&journal, (1..=3).map(|n| sized(k, n, 300)).collect()).await;
    journal.confirm(vec![seqs[0]]).await.unwrap();
    journal
        .writer_sql(
            // On its body: the entry row is in, the body's insert fails.
            "CREATE TRIGGER refuse BEFORE INSERT ON bodies WHEN length(NEW.body) = 400
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap();
    let before = journal.totals();
    // Makes room (drops the confirmed entry), then its insert fails.
    let refused = sized(k, 4, 400);
    let release = pause(&journal).await;
    let (refused, fine, ()) = tokio::join!(
        journal.append(refused),
        journal.append(sized(k, 5, 50)),
        async {
            until_queued(&journal, 2).await;
            drop(release);
        }
    );
    assert!(
        matches!(refused, Err(AppendError::Write(WriteError::Disk { .. }))),
        "{refused:?}"
    );
    assert_eq!(fine.unwrap().dropped, 0);
    let listed = journal.reader().list(&Default::default()).await.unwrap();
    assert_eq!(
        listed[0].seq, seqs[0],
        "the drop was rolled back with its append"
    );
    assert_eq!(listed.len(), 4);
    assert_eq!(rows(dir.path()), (4, 4), "the entry went with its body");
    let pending = journal.reader().pending(None, 10).await.unwrap();
    assert_eq!(pending.len(), 3, "every waiting entry reads, with its body");
    assert_eq!(journal.counters().dropped, 0);
    let totals = journal.totals();
    assert_eq!(
        totals.bytes,
        before.bytes + 50,
        "the writer's figures rolled back too"
    );
    let stats = journal.reader().stats().await.unwrap();
    assert_eq!(
        (stats.totals.bytes, stats.totals.confirmed),
        (totals.bytes, totals.confirmed)
    );
    journal.close().await;
}

#[tokio::test]
async fn a_failed_request_answers_with_its_own_reason() {
    let dir = TempDir::new("reasons");
    let journal = Journal::open(dir.path(), Options { max_bytes: 10 }).unwrap();
    let release = pause(&journal).await;
    let (full, fine, sql, ()) = tokio::join!(
        journal.append(sized("a.biapi.pro", 1, 11)),
        journal.append(sized("a.biapi.pro", 2, 10)),
        journal.writer_sql("SELECT nonsense FROM nowhere"),
        async {
            until_queued(&journal, 3).await;
            drop(release);
        }
    );
    assert!(matches!(full, Err(AppendError::Full { max_bytes: 10 })));
    assert_eq!(fine.unwrap().dropped, 0);
    assert!(matches!(sql, Err(Some(Failure::Disk(_)))));
    assert_eq!(journal.counters().commits, 1);
    journal.close().await;
}
