//! The frame of every page (head, header with navigation, the logged-in
//! identity and its logout form) and small pieces pages share: status badges,
//! times, durations. maud escapes every value; nothing here uses
//! `PreEscaped` on data.

use axum::http::StatusCode;
use cairn_model::time::rfc3339_utc;
use maud::{DOCTYPE, Markup, html};

use crate::auth::Actor;

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Workloads,
    Runs,
    Environments,
    Exposures,
    Audit,
    None,
}

const NAV: [(Nav, &str, &str); 5] = [
    (Nav::Workloads, "/", "Overview"),
    (Nav::Runs, "/runs", "Runs"),
    (Nav::Environments, "/environments", "Environments"),
    (Nav::Exposures, "/exposures", "Exposures"),
    (Nav::Audit, "/audit", "Audit"),
];

/// A whole page.
pub(super) fn page(title: &str, nav: Nav, actor: Option<&Actor>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cairn" }
                link rel="stylesheet" href="/assets/cairn.css";
                script src="/assets/cairn.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "cairn" }
                    @if actor.is_some() {
                        nav {
                            @for (item, href, label) in NAV {
                                @if item == nav {
                                    a.current href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                        }
                    }
                    @if let Some(actor) = actor {
                        div.who {
                            span #identity { (actor.identity.name) }
                            @if let Some(csrf) = actor.csrf() {
                                form.logout method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { "Log out" }
                                }
                            }
                        }
                    }
                }
                main #main {
                    (body)
                }
            }
        }
    }
}

/// A page saying what went wrong (403 with the reason, 404, 400, 500 with an
/// incident id).
pub(super) fn error_page(status: StatusCode, title: &str, detail: &str) -> Markup {
    page(
        title,
        Nav::None,
        None,
        html! {
            section.error #error data-status=(status.as_u16()) {
                h1 { (status.as_u16()) " " (title) }
                p #reason { (detail) }
                p { a href="/" { "Back to the workloads" } }
            }
        },
    )
}

/// A status word as a badge whose `data-status` the stylesheet colours.
pub(super) fn badge(status: &str) -> Markup {
    html! { span.badge data-status=(status) { (status) } }
}

/// A time for people: how long ago it was (or how far ahead), the exact time
/// (RFC 3339, UTC) on hover; the script restates both in the viewer's zone and
/// keeps "ago" current.
pub(super) fn time(ms: i64) -> Markup {
    let exact = rfc3339_utc(ms);
    html! { time datetime=(exact) title=(exact) { (relative(ms, cairn_engine::now_ms())) } }
}

/// `ms` as seen from `now`: `just now`, `5 min ago`, `3 h ago`, `2 d ago`,
/// `in 4 min`, or the UTC date when more than 30 days away.
pub(super) fn relative(ms: i64, now: i64) -> String {
    let away = now.saturating_sub(ms);
    let abs = away.unsigned_abs() / 1_000;
    let amount = if abs < 45 {
        return "just now".to_owned();
    } else if abs < 3_600 {
        format!("{} min", (abs / 60).max(1))
    } else if abs < 86_400 {
        format!("{} h", abs / 3_600)
    } else if abs < 30 * 86_400 {
        format!("{} d", abs / 86_400)
    } else {
        return rfc3339_utc(ms).chars().take(10).collect();
    };
    if away >= 0 {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

pub(super) fn maybe_time(ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => time(ms),
        None => html! { span.none { "—" } },
    }
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub(super) fn duration(ms: Option<i64>) -> String {
    let Some(ms) = ms.filter(|ms| *ms >= 0) else {
        return String::new();
    };
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1_000, (ms % 1_000) / 100)
    } else if ms < 3_600_000 {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1_000)
    } else {
        format!("{} h {:02} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// A digest shortened for a table cell (the full one in the title).
pub(super) fn short_digest(digest: &str) -> Markup {
    let short: String = match digest.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.chars().take(19).collect(),
    };
    html! { code title=(digest) { (short) } }
}

/// A link to an artifact's page.
pub(super) fn artifact_link(digest: &str) -> Markup {
    html! { a href={ "/artifacts/" (digest) } { (short_digest(digest)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_how_long_ago() {
        let now = 1_765_000_000_000;
        for (ago_ms, text) in [
            (0, "just now"),
            (44_000, "just now"),
            (-30_000, "just now"),
            (50_000, "1 min ago"),
            (5 * 60_000, "5 min ago"),
            (3 * 3_600_000 + 59 * 60_000, "3 h ago"),
            (2 * 86_400_000, "2 d ago"),
            (-4 * 60_000, "in 4 min"),
            (40 * 86_400_000, "2025-10-27"),
        ] {
            assert_eq!(relative(now - ago_ms, now), text, "{ago_ms}");
        }
        let markup = time(0).into_string();
        assert!(
            markup.starts_with("<time datetime=\"1970-01-01T00:00:00"),
            "{markup}"
        );
        assert!(markup.contains("title=\"1970-01-01T00:00:00"), "{markup}");
    }

    #[test]
    fn durations_read_well() {
        for (ms, text) in [
            (None, ""),
            (Some(-5), ""),
            (Some(0), "0 ms"),
            (Some(850), "850 ms"),
            (Some(12_345), "12.3 s"),
            (Some(245_000), "4 min 05 s"),
            (Some(7_380_000), "2 h 03 min"),
        ] {
            assert_eq!(duration(ms), text, "{ms:?}");
        }
    }
}
