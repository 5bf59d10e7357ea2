//! `journal stats | list | replay | drain`: the journal under `data_dir`, read while
//! `serve` runs (stats, list, replay), or drained by a process of its own (another
//! host's journal, whose relay is gone).

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::flags::{Flags, JOURNAL};
use super::{CliError, print_out, runtime};
use crate::amq::TealExchange;
use crate::relay::config::{JournalConfig, RelayConfig};
use crate::relay::durable::{drain_once, replay_message};
use crate::relay::journal::{self, Entry, EntryMeta, Filter, Journal, Options, parse_instant};
use crate::relay::publish::{AmqpPublisher, AmqpSettings, Publisher, Unroutable};

/// `journal`'s subcommands; the journal and the broker come from the same
/// configuration as `serve`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum JournalCommand {
    /// Print the journal's figures as one JSON object: waiting (pending, held), the
    /// oldest waiting webhook and its age, the bytes held and the limit.
    Stats {
        #[command(flatten)]
        flags: Flags<JOURNAL>,
    },
    /// Print the webhooks in the journal, one JSON object per line, oldest first; no
    /// payload unless --payload.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Include each webhook's message (TeaL's JSON, payload included: bank data).
        #[arg(long)]
        payload: bool,
        #[command(flatten)]
        flags: Flags<JOURNAL>,
    },
    /// Publish the matching webhooks again, with their original message_id and the
    /// header x-powens-relay-replay: true; one JSON line per webhook confirmed.
    Replay {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        flags: Flags<JOURNAL>,
    },
    /// Publish what a journal holds (e.g. another host's, whose relay is gone) and mark
    /// it delivered; takes the journal as `serve` does (one writer per data_dir). Exit
    /// 0 once nothing waits, 1 if webhooks remain held (no queue bound).
    Drain {
        #[command(flatten)]
        flags: Flags<JOURNAL>,
    },
}

/// Which webhooks `list` and `replay` take.
#[derive(Debug, clap::Args)]
pub(crate) struct FilterArgs {
    /// Only this Powens domain.
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Only this event.
    #[arg(long, value_name = "EVENT")]
    event: Option<String>,
    /// Only webhooks received at or after T: an ISO 8601 date and time (UTC unless it
    /// says otherwise), or a duration ago: 90s, 30m, 2h, 7d.
    #[arg(long, value_name = "T")]
    since: Option<String>,
    /// Only webhooks received before T (same forms).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    /// Only this id_webhook_data.
    #[arg(long, value_name = "N")]
    id: Option<i64>,
    /// Only webhooks not published yet (pending and held).
    #[arg(long)]
    pending: bool,
}

/// Why a `--since` or `--until` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{flag} must be an ISO 8601 date and time (e.g. 2026-12-03T09:00:00Z) or a duration ago \
     (90s, 30m, 2h, 7d)"
)]
pub(crate) struct BadTime {
    flag: &'static str,
}

/// `text` as an instant (see [`parse_instant`]), or the error naming `flag`.
fn instant(flag: &'static str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, BadTime> {
    parse_instant(text, now).ok_or(BadTime { flag })
}

impl FilterArgs {
    fn filter(&self) -> Result<Filter, CliError> {
        let now = Utc::now();
        let at = |flag, text: &Option<String>| -> Result<_, CliError> {
            text.as_deref()
                .map(|t| instant(flag, t, now))
                .transpose()
                .map_err(CliError::Time)
        };
        Ok(Filter {
            domain: self.domain.clone(),
            event: self.event.clone(),
            since: at("--since", &self.since)?,
            until: at("--until", &self.until)?,
            id_webhook_data: self.id,
            pending_only: self.pending,
            after: None,
            limit: None,
        })
    }
}

/// Runs a `journal` subcommand.
pub(crate) fn journal(command: JournalCommand) -> Result<ExitCode, CliError> {
    let flags = match &command {
        JournalCommand::Stats { flags }
        | JournalCommand::List { flags, .. }
        | JournalCommand::Replay { flags, .. }
        | JournalCommand::Drain { flags } => flags,
    };
    let config = RelayConfig::load_journal(&flags.overrides)?;
    super::say_data_dir(&config.journal.dir, false);
    runtime()?.block_on(async move {
        match command {
            JournalCommand::Stats { .. } => stats(&config).await,
            JournalCommand::List {
                filter, payload, ..
            } => list(&config, &filter.filter()?, payload).await,
            JournalCommand::Replay { filter, .. } => replay(&config, &filter.filter()?).await,
            JournalCommand::Drain { .. } => drain(&config).await,
        }
    })
}

/// `value` as one line of JSON on standard output.
fn print_json(value: &Value) -> Result<(), CliError> {
    print_out(&format!("{value}\n"))
}

async fn stats(config: &JournalConfig) -> Result<ExitCode, CliError> {
    let reader = journal::open_read_only(&config.journal.dir)?;
    let stats = reader.stats().await?;
    let oldest = stats.oldest_pending_received_at;
    print_json(&json!({
        "pending": stats.totals.pending,
        "held": stats.totals.held,
        "confirmed": stats.totals.confirmed,
        "oldest_pending": oldest.map(|at| at.to_rfc3339()),
        "oldest_pending_age_secs": oldest.map(|at| (Utc::now() - at).num_seconds().max(0)),
        "bytes": stats.totals.bytes,
        "undelivered_bytes": stats.totals.undelivered_bytes,
        "max_bytes": config.journal.max_bytes,
        "file_bytes": stats.file_bytes,
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// An entry as `list` prints it.
fn listed(meta: &EntryMeta) -> serde_json::Map<String, Value> {
    let at = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
    let Value::Object(fields) = json!({
        "seq": meta.seq.get(),
        "message_id": meta.message_id,
        "received_at": meta.received_at.to_rfc3339(),
        "domain": meta.routing_key,
        "event": meta.event,
        "id_webhook_data": meta.id_webhook_data,
        "state": meta.state.as_str(),
        "attempts": meta.attempts,
        "last_error": meta.last_error,
        "next_attempt_at": at(meta.next_attempt_at),
        "confirmed_at": at(meta.confirmed_at),
        "size": meta.size,
    }) else {
        unreachable!("json! of an object is an object")
    };
    fields
}

async fn list(
    config: &JournalConfig,
    filter: &Filter,
    payload: bool,
) -> Result<ExitCode, CliError> {
    let reader = journal::open_read_only(&config.journal.dir)?;
    if !payload {
        for meta in reader.list(filter).await? {
            print_json(&Value::Object(listed(&meta)))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for Entry { meta, body } in reader.list_with_bodies(filter).await? {
        let mut fields = listed(&meta);
        // The message as published: TeaL's JSON (a body the journal stored is one).
        let message = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        fields.insert("message".to_owned(), message);
        print_json(&Value::Object(fields))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The broker of `config`, connected (the journal commands need one to publish).
async fn publisher(config: &JournalConfig) -> Result<AmqpPublisher, CliError> {
    let broker = config.broker.broker().ok_or(CliError::NoBroker)?;
    Ok(AmqpPublisher::connect(AmqpSettings {
        broker,
        exchanges: config.broker.exchanges.clone(),
        declare: vec![TealExchange::PowensDomainWebhooks],
        unroutable: match config.publisher.unroutable {
            // A replay no queue receives is a failure to report, not a message to drop.
            Unroutable::Accept | Unroutable::Hold => Unroutable::Reject,
            Unroutable::Reject => Unroutable::Reject,
        },
        publish_timeout: config.publisher.publish_timeout,
        reconnect_max_delay: config.broker.reconnect_max_delay,
    })
    .await?)
}

async fn replay(config: &JournalConfig, filter: &Filter) -> Result<ExitCode, CliError> {
    let reader = journal::open_read_only(&config.journal.dir)?;
    let entries = reader.list_with_bodies(filter).await?;
    let publisher = publisher(config).await?;
    let (mut replayed, mut failed) = (0u64, 0u64);
    for entry in &entries {
        let message = replay_message(entry);
        match publisher.publish(&message).await {
            Ok(_) => {
                replayed += 1;
                print_json(&json!({
                    "seq": entry.meta.seq.get(),
                    "message_id": entry.meta.message_id,
                    "domain": entry.meta.routing_key,
                    "replayed": true,
                }))?;
            }
            Err(e) => {
                failed += 1;
                eprintln!(
                    "seq {} ({}): not replayed: {e}",
                    entry.meta.seq, entry.meta.routing_key
                );
            }
        }
    }
    publisher.close().await;
    eprintln!(
        "{replayed} replayed, {failed} failed, of {} matching",
        entries.len()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn drain(config: &JournalConfig) -> Result<ExitCode, CliError> {
    let dir = config.journal.dir.clone();
    let options = Options {
        max_bytes: config.journal.max_bytes,
    };
    let journal = tokio::task::spawn_blocking(move || Journal::open(&dir, options))
        .await
        .map_err(|e| CliError::Runtime(std::io::Error::other(e)))??;
    let publisher = Arc::new(publisher(config).await?);
    let mut published = 0u64;
    let outcome = loop {
        let pass = match drain_once(&journal, &publisher, |_| {}).await {
            Ok(pass) => pass,
            Err(e) => break Err(CliError::from(e)),
        };
        published += pass.published;
        if let Some(e) = pass.broker_down {
            break Err(CliError::Publish(e));
        }
        if pass.published == 0 {
            break Ok(());
        }
    };
    let totals = journal.totals();
    journal.close().await;
    publisher.close().await;
    outcome?;
    eprintln!(
        "{published} published; {} waiting, {} held",
        totals.pending, totals.held
    );
    Ok(if totals.pending + totals.held == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
