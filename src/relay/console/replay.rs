//! Replay from the console: one entry or the entries a filter selects, shown on a
//! confirmation page first, then published again one by one; both steps are POSTs that
//! pass the cross-site checks (`guard`).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::html;

use super::Ctx;
use super::guard::check_change;
use super::journal::{Fields, NotDone, field, filter_of, hidden, journal_of, rows};
use super::layout::{Section, page};
use crate::relay::durable::Durable;
use crate::relay::journal::{EntryMeta, Seq};

/// Entries one replay publishes at most (more: narrow the filter, or `powens-relay
/// journal replay`).
const REPLAY_MAX: usize = 1000;

/// `1 entry`, `2 entries`.
fn entries(n: usize) -> String {
    match n {
        1 => "1 entry".to_owned(),
        n => format!("{n} entries"),
    }
}

/// The entries a replay form selects: one `seq`, or a filter; at most
/// [`REPLAY_MAX`] + 1 (to tell that there are more).
async fn selected(durable: &Durable, fields: &Fields) -> Result<Vec<EntryMeta>, NotDone> {
    let metas = if let Some(seq) = field(fields, "seq") {
        let seq = seq
            .parse::<i64>()
            .map_err(|_| NotDone::bad("seq: a whole number"))?;
        durable
            .entry(Seq(seq))
            .await?
            .map(|entry| entry.meta)
            .into_iter()
            .collect()
    } else {
        let mut filter = filter_of(fields).map_err(NotDone::bad)?;
        filter.after = None;
        filter.limit = Some(REPLAY_MAX + 1);
        durable.reader().list(&filter).await?
    };
    if metas.len() > REPLAY_MAX {
        return Err(NotDone::bad(format!(
            "More than {REPLAY_MAX} entries match: narrow the filter, or use powens-relay journal replay."
        )));
    }
    Ok(metas)
}

/// A replay form's journal and selection, once it passed the cross-site checks.
async fn checked<'c>(
    ctx: &'c Ctx,
    headers: &HeaderMap,
    fields: &Fields,
) -> Result<(&'c Durable, Vec<EntryMeta>), NotDone> {
    check_change(headers, &ctx.token, field(fields, "token"))?;
    let durable = journal_of(ctx)?;
    let metas = selected(durable, fields).await?;
    Ok((durable, metas))
}

/// `POST /journal/replay`: what would be replayed, and the button that does it.
pub(crate) async fn confirm(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Result<Response, NotDone> {
    let (_, metas) = checked(&ctx, &headers, &fields).await?;
    Ok(page(
        "Replay?",
        Section::Journal,
        html! {
            h1 { "Replay " (entries(metas.len())) "?" }
            p {
                "Each is published again to its exchange with its original message_id and the header "
                code { "x-powens-relay-replay: true" } ". Consumers receive it a second time."
            }
            @if metas.is_empty() {
                p { "No entry matches: nothing to replay." }
            } @else {
                (rows(&metas))
                form method="post" action="/journal/replay/confirm" {
                    (hidden(&ctx, &fields))
                    button.danger type="submit" #confirm { "Replay " (entries(metas.len())) }
                    " " a href="/journal" { "Cancel" }
                }
            }
        },
    ))
}

/// `POST /journal/replay/confirm`: publishes the selection again, one by one, and says
/// what became of each.
pub(crate) async fn replay(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Result<Response, NotDone> {
    let (durable, metas) = checked(&ctx, &headers, &fields).await?;
    let mut outcomes = Vec::with_capacity(metas.len());
    for meta in &metas {
        let outcome = match durable.entry(meta.seq).await {
            Ok(Some(entry)) => match durable.replay(&entry).await {
                Ok(delivered) => Ok(delivered.label()),
                Err(e) => Err(e.to_string()),
            },
            Ok(None) => Err("no longer in the journal".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        outcomes.push((meta, outcome));
    }
    let replayed = outcomes.iter().filter(|(_, o)| o.is_ok()).count();
    tracing::info!(
        replayed,
        failed = outcomes.len() - replayed,
        "console: journal entries replayed"
    );
    Ok(page(
        "Replayed",
        Section::Journal,
        html! {
            h1 #replayed { (replayed) " of " (outcomes.len()) " replayed" }
            table.entries {
                thead { tr { th { "seq" } th { "domain" } th { "event" } th { "outcome" } } }
                tbody {
                    @for (meta, outcome) in &outcomes {
                        tr.(if outcome.is_ok() { "confirmed" } else { "failed" }) {
                            td { a href=(format!("/journal/{}", meta.seq.get())) { (meta.seq.get()) } }
                            td { (meta.routing_key) }
                            td { (meta.event.as_deref().unwrap_or("")) }
                            td {
                                @match outcome {
                                    Ok(label) => (label),
                                    Err(e) => (e),
                                }
                            }
                        }
                    }
                }
            }
            p { a href="/journal" { "Back to the journal" } }
        },
    ))
}
