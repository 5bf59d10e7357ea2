//! The journal as the console and `journal replay` read it: its figures, one entry,
//! and an entry published again.

use super::drain::outgoing;
use super::{Durable, JournalMode};
use crate::relay::journal::{Entry, Filter, JournalError, Reader, Seq, Stats};
use crate::relay::publish::{Delivered, Outgoing, PublishError, Publisher};

/// The message that publishes `entry` again: to its exchange, with its original
/// `message_id` and the replay header, as a message no journal takes again.
pub(crate) fn replay_message(entry: &Entry) -> Outgoing {
    outgoing(&entry.meta, entry.body.clone(), true)
}

impl Durable {
    /// Reads the journal while it is written.
    pub(crate) fn reader(&self) -> &Reader {
        self.shared.journal.reader()
    }

    /// The journal's figures, from its file.
    ///
    /// # Errors
    /// [`JournalError::Read`] or [`JournalError::Invalid`].
    pub(crate) async fn stats(&self) -> Result<Stats, JournalError> {
        self.reader().stats().await
    }

    /// `journal_max_bytes`.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.shared.settings.max_bytes
    }

    /// `fallback` or `always`.
    pub(crate) fn mode_label(&self) -> &'static str {
        match self.shared.mode {
            JournalMode::Fallback => "fallback",
            JournalMode::Always => "always",
        }
    }

    /// The entry `seq`, with its body; `None` when the journal has none (pruned).
    ///
    /// # Errors
    /// [`JournalError::Read`] or [`JournalError::Invalid`].
    pub(crate) async fn entry(&self, seq: Seq) -> Result<Option<Entry>, JournalError> {
        let filter = Filter {
            after: Some(Seq(seq.get().saturating_sub(1))),
            limit: Some(1),
            ..Filter::default()
        };
        let mut entries = self.reader().list_with_bodies(&filter).await?;
        Ok(entries.pop().filter(|e| e.meta.seq == seq))
    }

    /// Publishes `entry` again to the broker (not through the journal), as `journal
    /// replay` does.
    ///
    /// # Errors
    /// The broker's [`PublishError`].
    pub(crate) async fn replay(&self, entry: &Entry) -> Result<Delivered, PublishError> {
        self.shared.broker.publish(&replay_message(entry)).await
    }
}
