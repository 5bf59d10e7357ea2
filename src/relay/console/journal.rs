//! The journal's pages: the entries a filter selects, one entry opened (its message's
//! fields and its payload pretty-printed; never its user token or signature), and
//! replay of one entry or of a filtered set, after a confirmation page, by POSTs that
//! pass the cross-site checks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde_json::Value;

use super::Ctx;
use super::guard::{CrossSite, check_change};
use super::layout::{Section, bytes, instant, page, problem};
use crate::relay::durable::Durable;
use crate::relay::journal::{EntryMeta, Filter, JournalError, Seq, parse_instant};

/// Entries a listing page shows.
const PAGE: usize = 100;
/// Entries one replay publishes at most (more: narrow the filter, or `powens-relay
/// journal replay`).
const REPLAY_MAX: usize = 1000;

/// Why a journal page cannot be shown: its status and what to say.
#[derive(Debug)]
pub(crate) struct NotDone(StatusCode, String);

impl NotDone {
    fn bad(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl From<JournalError> for NotDone {
    fn from(e: JournalError) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl From<CrossSite> for NotDone {
    fn from(e: CrossSite) -> Self {
        Self(StatusCode::FORBIDDEN, e.to_string())
    }
}

impl IntoResponse for NotDone {
    fn into_response(self) -> Response {
        problem(self.0, Section::Journal, &self.1)
    }
}

/// A filter as the form writes it: every field text, empty for "any".
type Fields = HashMap<String, String>;

fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The journal filter of `fields`, or what is wrong with them.
fn filter_of(fields: &Fields) -> Result<Filter, String> {
    let now = Utc::now();
    let at = |name: &str| -> Result<_, String> {
        field(fields, name)
            .map(|text| {
                parse_instant(text, now).ok_or_else(|| {
                    format!(
                        "{name}: an ISO 8601 date and time (2026-12-03T09:00:00Z) or a duration ago (90s, 30m, 2h, 7d)"
                    )
                })
            })
            .transpose()
    };
    let number = |name: &str| -> Result<Option<i64>, String> {
        field(fields, name)
            .map(|text| {
                text.parse::<i64>()
                    .map_err(|_| format!("{name}: a whole number"))
            })
            .transpose()
    };
    Ok(Filter {
        domain: field(fields, "domain").map(str::to_owned),
        event: field(fields, "event").map(str::to_owned),
        since: at("since")?,
        until: at("until")?,
        id_webhook_data: number("id")?,
        pending_only: field(fields, "state") == Some("waiting"),
        after: number("after")?.map(Seq),
        limit: None,
    })
}

fn journal_of(ctx: &Ctx) -> Result<&Arc<Durable>, NotDone> {
    ctx.sources.journal.as_ref().ok_or_else(|| {
        NotDone(
            StatusCode::NOT_FOUND,
            "The journal is off (journal = \"off\", or no amqp_url): there is nothing to browse."
                .into(),
        )
    })
}

/// The filter's form, its fields as given.
fn filter_form(fields: &Fields) -> Markup {
    let value = |name: &str| field(fields, name).unwrap_or("").to_owned();
    html! {
        form.filter method="get" action="/journal" {
            label { "domain " input name="domain" value=(value("domain")) placeholder="budgea.biapi.pro"; }
            label { "event " input name="event" value=(value("event")) placeholder="USER_SYNCED"; }
            label { "since " input name="since" value=(value("since")) placeholder="2h or 2026-12-03T09:00:00Z"; }
            label { "until " input name="until" value=(value("until")); }
            label { "id_webhook_data " input name="id" value=(value("id")) inputmode="numeric"; }
            label {
                "state "
                select name="state" {
                    option value="" { "any" }
                    option value="waiting" selected[value("state") == "waiting"] { "waiting (pending, held)" }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

/// The hidden fields that carry a selection (and the form token) into a POST.
fn hidden(ctx: &Ctx, fields: &Fields) -> Markup {
    html! {
        input type="hidden" name="token" value=(ctx.token.as_str());
        @for name in ["seq", "domain", "event", "since", "until", "id", "state"] {
            @if let Some(value) = field(fields, name) {
                input type="hidden" name=(name) value=(value);
            }
        }
    }
}

fn rows(metas: &[EntryMeta]) -> Markup {
    html! {
        table.entries {
            thead {
                tr {
                    th { "seq" } th { "received" } th { "domain" } th { "event" }
                    th { "id_webhook_data" } th { "state" } th { "attempts" } th { "size" }
                }
            }
            tbody {
                @for meta in metas {
                    tr.(meta.state.as_str()) {
                        td { a href=(format!("/journal/{}", meta.seq.get())) { (meta.seq.get()) } }
                        td { (instant(meta.received_at)) }
                        td { (meta.routing_key) }
                        td { (meta.event.as_deref().unwrap_or("")) }
                        td { (meta.id_webhook_data.map(|i| i.to_string()).unwrap_or_default()) }
                        td { (meta.state.as_str()) }
                        td.number { (meta.attempts) }
                        td.number { (bytes(meta.size)) }
                    }
                }
            }
        }
    }
}

/// `GET /journal`: the entries the filter selects, a page at a time.
pub(crate) async fn list(
    State(ctx): State<Arc<Ctx>>,
    Query(fields): Query<Fields>,
) -> Result<Response, NotDone> {
    let durable = journal_of(&ctx)?;
    let mut filter = filter_of(&fields).map_err(NotDone::bad)?;
    filter.limit = Some(PAGE + 1);
    let mut metas = durable.reader().list(&filter).await?;
    let more = metas.len() > PAGE;
    metas.truncate(PAGE);
    let mut next = fields.clone();
    if let Some(last) = metas.last() {
        next.insert("after".into(), last.seq.get().to_string());
    }
    let next = query_string(&next);
    Ok(page(
        "Journal",
        Section::Journal,
        html! {
            h1 { "Journal" }
            (filter_form(&fields))
            @if metas.is_empty() {
                p #no-entries { "No entry matches." }
            } @else {
                (rows(&metas))
                @if more {
                    p { a href=(format!("/journal?{next}")) { "Next " (PAGE) " →" } }
                }
                form method="post" action="/journal/replay" {
                    (hidden(&ctx, &fields))
                    button type="submit" { "Replay the matching entries…" }
                }
            }
        },
    ))
}

/// `1 entry`, `2 entries`.
fn entries(n: usize) -> String {
    match n {
        1 => "1 entry".to_owned(),
        n => format!("{n} entries"),
    }
}

/// `fields` as a query string.
fn query_string(fields: &Fields) -> String {
    let mut pairs: Vec<_> = fields.iter().filter(|(_, v)| !v.is_empty()).collect();
    pairs.sort();
    let encode = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /journal/{seq}`: one entry, its message's fields and payload.
pub(crate) async fn entry(
    State(ctx): State<Arc<Ctx>>,
    Path(seq): Path<i64>,
) -> Result<Response, NotDone> {
    let durable = journal_of(&ctx)?;
    let entry = durable.entry(Seq(seq)).await?.ok_or_else(|| {
        NotDone(
            StatusCode::NOT_FOUND,
            format!("No entry {seq} in the journal (pruned, or never there)."),
        )
    })?;
    let meta = &entry.meta;
    let message: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&entry.body).ok();
    let text = |name: &str| -> Option<String> {
        match message.as_ref()?.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let hmac = message
        .as_ref()
        .and_then(|m| m.get("hmac_signature"))
        .and_then(Value::as_object);
    let payload = text("payload").map(|payload| match serde_json::from_str::<Value>(&payload) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap_or(payload),
        Err(_) => payload,
    });
    let mut fields = Fields::new();
    fields.insert("seq".into(), seq.to_string());
    Ok(page(
        &format!("Entry {seq}"),
        Section::Journal,
        html! {
            h1 { "Entry " (seq) }
            table.fields {
                tr { th { "state" } td { (meta.state.as_str()) } }
                tr { th { "received" } td { (instant(meta.received_at)) } }
                tr { th { "domain (routing key)" } td { (meta.routing_key) } }
                tr { th { "event" } td { (meta.event.as_deref().unwrap_or("")) } }
                tr { th { "id_webhook_data" } td { (meta.id_webhook_data.map(|i| i.to_string()).unwrap_or_default()) } }
                tr { th { "message_id" } td { code { (meta.message_id) } } }
                tr { th { "exchange" } td { (meta.exchange) } }
                tr { th { "attempts" } td { (meta.attempts) } }
                @if let Some(error) = &meta.last_error { tr { th { "last error" } td { (error) } } }
                @if let Some(at) = meta.confirmed_at { tr { th { "confirmed" } td { (instant(at)) } } }
                tr { th { "size" } td { (bytes(meta.size)) } }
                @if let Some(at) = text("timestamp") { tr { th { "timestamp" } td { (at) } } }
                @if let Some(hmac) = hmac {
                    tr { th { "signed as" } td { code { (hmac.get("payload_prefix").and_then(Value::as_str).unwrap_or("")) } } }
                    tr { th { "signature date" } td { (hmac.get("signature_date").and_then(Value::as_str).unwrap_or("")) } }
                    tr { th { "signature" } td.small { "in the message, not shown" } }
                }
                tr {
                    th { "user token" }
                    td.small { @if text("user_token").is_some() { "in the message, not shown" } @else { "none" } }
                }
            }
            h2 { "Payload" }
            @match payload {
                Some(payload) => pre #payload { (payload) },
                None => pre #payload { (String::from_utf8_lossy(&entry.body)) },
            }
            form method="post" action="/journal/replay" {
                (hidden(&ctx, &fields))
                button type="submit" { "Replay this entry…" }
            }
        },
    ))
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

/// `POST /journal/replay`: what would be replayed, and the button that does it.
pub(crate) async fn confirm(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Result<Response, NotDone> {
    check_change(&headers, &ctx.token, field(&fields, "token"))?;
    let durable = journal_of(&ctx)?;
    let metas = selected(durable, &fields).await?;
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
    check_change(&headers, &ctx.token, field(&fields, "token"))?;
    let durable = journal_of(&ctx)?;
    let metas = selected(durable, &fields).await?;
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
