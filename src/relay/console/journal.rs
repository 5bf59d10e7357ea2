//! The journal's pages: the entries a filter selects, one entry opened (its message's
//! fields and its payload pretty-printed; never its user token or signature). Replay
//! is in `replay.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::{Markup, html};
use serde_json::Value;

use super::Ctx;
use super::guard::CrossSite;
use super::layout::{Section, bytes, instant, page, problem};
use crate::relay::durable::Durable;
use crate::relay::journal::{EntryMeta, Filter, JournalError, Seq, parse_instant};

/// Entries a listing page shows.
const PAGE: usize = 100;

/// Why a journal page cannot be shown: its status and what to say.
#[derive(Debug)]
pub(super) struct NotDone(StatusCode, String);

impl NotDone {
    pub(super) fn bad(message: impl Into<String>) -> Self {
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
pub(super) type Fields = HashMap<String, String>;

pub(super) fn field<'f>(fields: &'f Fields, name: &str) -> Option<&'f str> {
    fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The journal filter of `fields`, or what is wrong with them.
pub(super) fn filter_of(fields: &Fields) -> Result<Filter, String> {
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

pub(super) fn journal_of(ctx: &Ctx) -> Result<&Arc<Durable>, NotDone> {
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
pub(super) fn hidden(ctx: &Ctx, fields: &Fields) -> Markup {
    html! {
        input type="hidden" name="token" value=(ctx.token.as_str());
        @for name in ["seq", "domain", "event", "since", "until", "id", "state"] {
            @if let Some(value) = field(fields, name) {
                input type="hidden" name=(name) value=(value);
            }
        }
    }
}

pub(super) fn rows(metas: &[EntryMeta]) -> Markup {
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
    let payload = text("payload").map(|payload| pretty(&payload).unwrap_or(payload));
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

/// `json` indented, its keys in their order; `None` when it is not JSON (a CFONB
/// payload).
fn pretty(json: &str) -> Option<String> {
    let mut out = Vec::with_capacity(json.len() * 2);
    let mut from = serde_json::Deserializer::from_str(json);
    let mut to = serde_json::Serializer::pretty(&mut out);
    serde_transcode::transcode(&mut from, &mut to).ok()?;
    from.end().ok()?;
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_indented_in_their_own_order_and_text_stays_text() {
        let text = pretty(r#"{"z": 1, "a": {"y": [1, 2], "b": "Caf\u00e9"}}"#).unwrap();
        assert!(
            text.find("\"z\"").unwrap() < text.find("\"a\"").unwrap(),
            "{text}"
        );
        assert!(text.contains("\n  \"a\": {\n    \"y\": ["), "{text}");
        assert!(text.contains("Café"), "{text}");
        assert_eq!(pretty("0101CFONB line"), None);
        assert_eq!(pretty(r#"{"a": 1} trailing"#), None);
    }

    #[test]
    fn filters_read_the_form_and_name_a_bad_field() {
        let fields: Fields = [
            ("domain", "budgea.biapi.pro"),
            ("id", " 42 "),
            ("state", "waiting"),
            ("event", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let filter = filter_of(&fields).unwrap();
        assert_eq!(filter.domain.as_deref(), Some("budgea.biapi.pro"));
        assert_eq!(filter.id_webhook_data, Some(42));
        assert!(filter.pending_only);
        assert_eq!(filter.event, None);
        for (name, value) in [("since", "yesterday"), ("id", "4x"), ("after", "-")] {
            let bad: Fields = [(name.to_owned(), value.to_owned())].into_iter().collect();
            let message = filter_of(&bad).unwrap_err();
            assert!(message.starts_with(name), "{message}");
        }
    }
}
