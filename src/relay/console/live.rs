//! The live page: the state at a glance and the webhooks as they arrive, kept current
//! by server-sent events (`/events`): a `webhook` event per webhook (its row, rendered
//! here) and a `glance` event every few seconds.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use maud::{Markup, html};
use tokio::sync::broadcast::error::RecvError;

use super::Ctx;
use super::feed::{Row, Verdict};
use super::glance;
use super::layout::{Section, clock, page};

/// How often the pages open get the glance again.
const GLANCE_EVERY: Duration = Duration::from_secs(3);

/// `GET /`.
pub(crate) async fn dashboard(State(ctx): State<Arc<Ctx>>) -> Response {
    let glance = glance::render(&ctx).await;
    let rows = ctx.feed.recent();
    page(
        "Live",
        Section::Live,
        html! {
            section #glance aria-live="polite" { (glance) }
            section {
                h1 {
                    "Webhooks "
                    span #stream.small data-state="connecting" { "connecting…" }
                }
                table.webhooks {
                    thead {
                        tr {
                            th { "time" } th { "domain" } th { "event" } th { "status" }
                            th { "verdict" } th { "delivery" } th { "detail" }
                        }
                    }
                    tbody #live {
                        @for row in &rows { (row_markup(row, ctx.sources.journal.is_some())) }
                    }
                }
                @if rows.is_empty() {
                    p #empty.small { "No webhook since the relay started. They appear here as they arrive." }
                }
            }
        },
    )
}

/// One webhook's row.
pub(crate) fn row_markup(row: &Row, journal: bool) -> Markup {
    let journal_link = match (journal, row.id_webhook_data, row.verdict) {
        (true, Some(id), Verdict::Verified | Verdict::Forwarded) => Some(format!(
            "/journal?domain={}&id={id}",
            percent_encoding::utf8_percent_encode(&row.domain, percent_encoding::NON_ALPHANUMERIC)
        )),
        _ => None,
    };
    html! {
        tr.(row.verdict.label()) id=(format!("webhook-{}", row.number))
            data-request-id=(row.request_id) {
            td { (clock(row.at)) }
            td { (row.domain) }
            td { (row.event) }
            td.number { (row.status) }
            td { span.verdict { (row.verdict.label()) } }
            td { (row.delivered.unwrap_or("")) }
            td.detail {
                @if let Some((_, sentence)) = &row.diagnosis {
                    p.diagnosis { (sentence) }
                }
                @if let Some(reason) = &row.reason {
                    span.reason { (reason) }
                }
                @if let Some(id) = row.id_webhook_data {
                    span.small { "id_webhook_data " (id) }
                }
                @if let Some(href) = journal_link {
                    " " a href=(href) { "in the journal" }
                }
                " " span.small title="x-request-id" { (row.request_id) }
                " " span.small { (format!("{:.1} ms", row.millis)) }
            }
        }
    }
}

/// `GET /events`: the stream of rows and glances, until the relay stops.
pub(crate) async fn events(State(ctx): State<Arc<Ctx>>) -> Response {
    Sse::new(stream(ctx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

enum Next {
    Row(Arc<Row>),
    Missed(u64),
    Glance,
    Closed,
}

fn stream(ctx: Arc<Ctx>) -> impl Stream<Item = Result<Event, Infallible>> {
    let rows = ctx.feed.subscribe();
    let mut ticks = tokio::time::interval(GLANCE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let closing = ctx.closing.clone();
    futures_util::stream::unfold(
        (ctx, rows, ticks, closing),
        |(ctx, mut rows, mut ticks, mut closing)| async move {
            let next = tokio::select! {
                row = rows.recv() => match row {
                    Ok(row) => Next::Row(row),
                    Err(RecvError::Lagged(missed)) => Next::Missed(missed),
                    Err(RecvError::Closed) => Next::Closed,
                },
                _ = ticks.tick() => Next::Glance,
                _ = closing.wait_for(|closing| *closing) => Next::Closed,
            };
            let event = match next {
                Next::Row(row) => Event::default()
                    .event("webhook")
                    .data(row_markup(&row, ctx.sources.journal.is_some()).into_string()),
                Next::Missed(missed) => Event::default().event("missed").data(format!(
                    "{missed} webhooks came too fast to show: reload the page"
                )),
                Next::Glance => Event::default()
                    .event("glance")
                    .data(glance::render(&ctx).await.into_string()),
                Next::Closed => return None,
            };
            Some((Ok(event), (ctx, rows, ticks, closing)))
        },
    )
}
