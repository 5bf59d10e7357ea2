//! The state at a glance: the broker, the journal, requests per minute over the last
//! hour, refusals by reason, the dispatcher's clients. Rendered whole, for the page
//! that opens and again every few seconds for the pages open.

use chrono::Utc;
use maud::{Markup, html};

use super::Ctx;
use super::feed::{MINUTES, Minute};
use super::layout::{age, bytes};

/// The glance's markup (the inside of `#glance`).
pub(crate) async fn render(ctx: &Ctx) -> Markup {
    let now = Utc::now();
    let publisher = &ctx.sources.publisher;
    let journal = match &ctx.sources.journal {
        None => None,
        Some(durable) => Some((
            durable.mode_label(),
            durable.max_bytes(),
            durable.stats().await,
        )),
    };
    let minutes = ctx.feed.per_minute(now);
    let hour: u64 = minutes
        .iter()
        .map(|m| m.accepted + m.refused + m.failed)
        .sum();
    let refusals = ctx.feed.refusals();
    html! {
        div.cards {
            div.card #broker {
                h2 { "Broker" }
                @match (publisher.is_ready(), publisher.broker_node()) {
                    (true, Some(node)) => p.good { "connected to " code { (node) } },
                    (true, None) => p.warn { "no broker: messages are not published" },
                    (false, _) => p.bad { "unavailable" },
                }
            }
            div.card #journal {
                h2 { "Journal" }
                @match &journal {
                    None => p { "off" },
                    Some((_, _, Err(e))) => p.bad { "cannot be read: " (e) },
                    Some((mode, max, Ok(stats))) => {
                        p {
                            span.figure #pending { (stats.totals.pending) } " pending, "
                            span.figure #held { (stats.totals.held) } " held"
                        }
                        @if let Some(oldest) = stats.oldest_pending_received_at {
                            p.warn { "oldest waiting for " ((age((now - oldest).num_seconds()))) }
                        }
                        p.small {
                            (mode) ", " (bytes(stats.totals.bytes)) " of " (bytes(*max))
                        }
                    }
                }
            }
            div.card #dispatcher {
                h2 { "Dispatcher" }
                @match &ctx.sources.clients {
                    None => p { "not hosted" },
                    Some(clients) => p { span.figure { (clients()) } " websocket clients" },
                }
            }
        }
        div.card.wide #traffic {
            h2 { "Webhooks per minute, last hour " span.small { "(" (hour) " in all)" } }
            (chart(&minutes))
        }
        div.card.wide #refusals {
            h2 { "Refusals by reason " span.small { "(since the relay started)" } }
            @if refusals.is_empty() {
                p { "none" }
            } @else {
                table {
                    @for (reason, count) in &refusals {
                        tr { td { (reason) } td.number { (count) } }
                    }
                }
            }
        }
    }
}

/// A bar per minute: accepted at the bottom, refused above, failed on top.
fn chart(minutes: &[Minute]) -> Markup {
    const WIDTH: u64 = 12;
    const HEIGHT: u64 = 80;
    let most = minutes
        .iter()
        .map(|m| m.accepted + m.refused + m.failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let scaled = |n: u64| n.saturating_mul(HEIGHT) / most;
    html! {
        svg.chart viewBox=(format!("0 0 {} {}", WIDTH * MINUTES as u64, HEIGHT))
            role="img" aria-label="webhooks per minute over the last hour" {
            @for (i, minute) in minutes.iter().enumerate() {
                @let x = i as u64 * WIDTH;
                @let ok = scaled(minute.accepted);
                @let refused = scaled(minute.refused);
                @let failed = scaled(minute.failed);
                g {
                    title {
                        (minutes.len() - 1 - i) " min ago: " (minute.accepted) " accepted, "
                        (minute.refused) " refused, " (minute.failed) " failed"
                    }
                    rect.slot x=(x) y="0" width=(WIDTH - 2) height=(HEIGHT) {}
                    rect.ok x=(x) y=(HEIGHT.saturating_sub(ok)) width=(WIDTH - 2) height=(ok) {}
                    rect.refused x=(x) y=(HEIGHT.saturating_sub(ok + refused)) width=(WIDTH - 2) height=(refused) {}
                    rect.failed x=(x) y=(HEIGHT.saturating_sub(ok + refused + failed)) width=(WIDTH - 2) height=(failed) {}
                }
            }
        }
    }
}
