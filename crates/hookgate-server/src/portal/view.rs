//! The page layout and the small pieces every page group shares: times,
//! status badges, paging links, pretty-printed bodies.
//!
//! Everything here is `maud` markup, which escapes each interpolated value;
//! nothing builds HTML by string concatenation.

use axum::response::Html;
use maud::{html, Markup, DOCTYPE};

use super::Session;
use crate::store::Cursor;

/// The sections of the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Endpoints,
    Events,
    Callbacks,
    EventTypes,
}

const NAV: [(Nav, &str, &str); 5] = [
    (Nav::Overview, "/portal/overview", "Overview"),
    (Nav::Endpoints, "/portal/endpoints", "Endpoints"),
    (Nav::Events, "/portal/events", "Webhook events"),
    (Nav::Callbacks, "/portal/callbacks", "Callback messages"),
    (Nav::EventTypes, "/portal/event-types", "Event types"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Hookgate" }
            link rel="stylesheet" href="/portal/assets/portal.css";
        }
    }
}

/// A page without navigation: sign-in and errors.
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(bare_markup(title, body).into_string())
}

fn bare_markup(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main #main.narrow { (body) }
            }
        }
    }
}

/// A page of the signed-in portal. Admin sessions get an organisation
/// switcher listing `orgs` (id, name).
pub fn page(
    session: &Session,
    active: Nav,
    title: &str,
    orgs: &[(String, String)],
    body: Markup,
) -> Html<String> {
    Html(page_markup(session, active, title, orgs, body).into_string())
}

fn page_markup(
    session: &Session,
    active: Nav,
    title: &str,
    orgs: &[(String, String)],
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/portal/overview" { "Hookgate" }
                    nav aria-label="Sections" {
                        ul {
                            @for (nav, href, label) in NAV {
                                li {
                                    @if nav == active {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        @if session.admin && !orgs.is_empty() {
                            form.inline method="post" action="/portal/org" {
                                (csrf(session))
                                label for="org_id" { "Organisation" }
                                select #org_id name="org_id" {
                                    @for (id, name) in orgs {
                                        option value=(id) selected[*id == session.org_id] {
                                            (name)
                                        }
                                    }
                                }
                                button type="submit" { "Switch" }
                            }
                        } @else {
                            span.org { (session.org_name) }
                        }
                        form.inline method="post" action="/portal/signout" {
                            (csrf(session))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field that every form of a session carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf_token); }
}

/// A one-button form that POSTs to `action`, returning to `back`.
pub fn post_button(
    session: &Session,
    action: &str,
    back: &str,
    label: &str,
    enabled: bool,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(session))
            input type="hidden" name="back" value=(back);
            button type="submit" disabled[!enabled] { (label) }
        }
    }
}

/// A status as a coloured badge; the colour only repeats the text.
pub fn badge(status: &str) -> Markup {
    let tone = match status {
        "Success" | "Approved" | "STATUS_ACTIVE" | "Answered" => "good",
        "Retrying" => "warn",
        "Failed" | "Denied" => "bad",
        _ => "muted",
    };
    html! { span class={ "badge " (tone) } { (status) } }
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(ms: i64) -> Markup {
    html! { time datetime=(iso(ms)) { (human_time(ms)) } }
}

/// Unix ms as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn human_time(ms: i64) -> String {
    let (date, (h, m, s)) = split_ms(ms);
    format!("{date} {h:02}:{m:02}:{s:02} UTC")
}

fn iso(ms: i64) -> String {
    let (date, (h, m, s)) = split_ms(ms);
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

fn split_ms(ms: i64) -> (String, (i64, i64, i64)) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    (
        format!("{y:04}-{mo:02}-{d:02}"),
        (of_day / 3600, of_day % 3600 / 60, of_day % 60),
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM[:SS]` (a `datetime-local` value, read as UTC)
/// or a bare date into Unix ms.
pub fn parse_input_time(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once(['T', ' ']).unwrap_or((text, "00:00"));
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, d) = (date.next()??, date.next()??, date.next()??);
    let mut clock = clock.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let h = clock.next()??;
    let mi = clock.next()??;
    let s = clock.next().unwrap_or(Some(0))?;
    let valid = (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s);
    valid.then(|| ((days_from_civil(y, mo, d) * 86_400) + h * 3600 + mi * 60 + s) * 1000)
}

/// A body as indented JSON when it is JSON, else as text.
pub fn pretty_body(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// "Newer" and "Older" links that keep the page's filters (`query`,
/// already encoded without cursors).
pub fn pager(path: &str, query: &str, before: Option<Cursor>, after: Option<Cursor>) -> Markup {
    let link = |name: &str, cursor: Cursor| {
        let joiner = if query.is_empty() { "" } else { "&" };
        format!("{path}?{query}{joiner}{name}={}", cursor.encode())
    };
    html! {
        nav.pager aria-label="Pages" {
            @if let Some(cursor) = before {
                a rel="prev" href=(link("before", cursor)) { "← Newer" }
            }
            @if let Some(cursor) = after {
                a rel="next" href=(link("after", cursor)) { "Older →" }
            }
        }
    }
}

/// A notice shown above a page's content.
pub fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(human_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(human_time(1_701_396_866_000), "2023-12-01 02:14:26 UTC");
        assert_eq!(human_time(1_709_251_199_000), "2024-02-29 23:59:59 UTC");
    }

    #[test]
    fn input_times_parse_back() {
        assert_eq!(
            parse_input_time("2023-12-01T02:14:26"),
            Some(1_701_396_866_000)
        );
        assert_eq!(
            parse_input_time("2024-02-29T23:59"),
            Some(1_709_251_140_000)
        );
        assert_eq!(parse_input_time("1970-01-01"), Some(0));
        for bad in [
            "",
            "yesterday",
            "2024-13-01T00:00",
            "2024-01-01T24:00",
            "2024-01",
        ] {
            assert_eq!(parse_input_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn markup_escapes_what_it_shows() {
        let shown = badge("<script>alert(1)</script>").into_string();
        assert!(shown.contains("&lt;script&gt;"), "{shown}");
        assert!(!shown.contains("<script>"), "{shown}");
    }

    #[test]
    fn bodies_are_indented_when_json() {
        assert_eq!(pretty_body(br#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_body(b"not json <b>"), "not json <b>");
    }
}
