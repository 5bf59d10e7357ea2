//! The frame of every page, and the small pieces pages share. Every value reaches the
//! page through maud, which escapes it: a domain, an event or a payload is text, never
//! markup.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

/// Which page of the navigation is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Live,
    Journal,
}

/// A whole page: `title`, the navigation, `body`.
pub(crate) fn page(title: &str, section: Section, body: Markup) -> Response {
    let link = |href: &str, label: &str, this: Section| {
        html! {
            a href=(href) aria-current=[(section == this).then_some("page")] { (label) }
        }
    };
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · powens-relay" }
                    link rel="stylesheet" href="/assets/console.css";
                    script src="/assets/console.js" defer {}
                }
                body {
                    header {
                        strong { "powens-relay" }
                        nav {
                            (link("/", "Live", Section::Live))
                            (link("/journal", "Journal", Section::Journal))
                        }
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

/// A page saying what went wrong, with `status`.
pub(crate) fn problem(status: StatusCode, section: Section, message: &str) -> Response {
    let mut response = page(
        "Error",
        section,
        html! {
            h1 { "Not done" }
            p.problem role="alert" { (message) }
        },
    );
    *response.status_mut() = status;
    response
}

/// `12:03:04` (UTC), the whole instant in its title.
pub(crate) fn clock(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S%.3f UTC")) {
            (at.format("%H:%M:%S"))
        }
    }
}

/// `2026-12-03 12:03:04 UTC`.
pub(crate) fn instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `3 min 20 s`, `2 h 5 min`, `4 d 1 h`: a duration as an operator reads it.
pub(crate) fn age(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        3600..86400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86400, secs % 86400 / 3600),
    }
}

/// `1.5 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_as_people_write_them() {
        assert_eq!(age(-5), "0 s");
        assert_eq!(age(59), "59 s");
        assert_eq!(age(200), "3 min 20 s");
        assert_eq!(age(7500), "2 h 5 min");
        assert_eq!(age(90000), "1 d 1 h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
    }

    #[test]
    fn values_are_escaped() {
        let response = problem(
            StatusCode::BAD_REQUEST,
            Section::Live,
            "<script>alert(1)</script>",
        );
        let body = futures_util::FutureExt::now_or_never(axum::body::to_bytes(
            response.into_body(),
            usize::MAX,
        ))
        .unwrap()
        .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(!text.contains("<script>alert"), "{text}");
        assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
