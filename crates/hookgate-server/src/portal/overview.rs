//! The overview: how the last 24 hours of webhook events went, per
//! endpoint, as a server-rendered SVG chart (no script) with the same
//! numbers in a table beside it for screen readers and copying.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use super::view::Nav;
use super::{render, PortalResult, Session};
use crate::api::AppState;
use crate::now_ms;
use crate::store::{Endpoint, EndpointStats};

/// The window the overview covers.
const WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Chart geometry, in SVG user units.
const CHART_WIDTH: u32 = 960;
const BAR_LEFT: u32 = 0;
const BAR_WIDTH: u32 = 720;
const ROW_HEIGHT: u32 = 46;

pub fn routes() -> Router<AppState> {
    Router::new().route("/portal/overview", get(overview))
}

/// One endpoint's row: its URL and how its events stand.
struct Row {
    url: String,
    stats: EndpointStats,
}

impl Row {
    fn total(&self) -> u64 {
        let s = &self.stats;
        s.succeeded + s.failed + s.retrying + s.queued
    }
}

/// Share of decided events (succeeded or failed) that succeeded, in
/// percent; `None` before any is decided.
pub fn success_rate(succeeded: u64, failed: u64) -> Option<f64> {
    let decided = succeeded + failed;
    (decided > 0).then(|| succeeded as f64 * 100.0 / decided as f64)
}

fn rate_text(stats: &EndpointStats) -> String {
    match success_rate(stats.succeeded, stats.failed) {
        Some(rate) => format!("{rate:.1}%"),
        None => "—".into(),
    }
}

/// Endpoints with events in the window, busiest first, labelled by URL.
fn rows(stats: Vec<EndpointStats>, endpoints: &[Endpoint]) -> Vec<Row> {
    let mut rows: Vec<Row> = stats
        .into_iter()
        .map(|stats| Row {
            url: endpoints
                .iter()
                .find(|e| e.endpoint_id == stats.endpoint_id)
                .map(|e| e.url.clone())
                .unwrap_or_else(|| stats.endpoint_id.clone()),
            stats,
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.total()));
    rows
}

/// Shortens a label to `max` characters, marking the cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// A stacked bar per endpoint: succeeded, retrying and queued, failed;
/// lengths relative to the busiest endpoint.
fn chart(rows: &[Row]) -> Markup {
    let busiest = rows.iter().map(Row::total).max().unwrap_or(1).max(1);
    let height = ROW_HEIGHT * rows.len() as u32 + 8;
    let scale = |count: u64| (count as f64 * f64::from(BAR_WIDTH) / busiest as f64).round();
    html! {
        svg.chart viewBox={ "0 0 " (CHART_WIDTH) " " (height) } role="img"
            aria-labelledby="chart-title" {
            title #chart-title { "Events of the last 24 hours per endpoint, by status" }
            @for (i, row) in rows.iter().enumerate() {
                @let top = ROW_HEIGHT * i as u32;
                @let s = &row.stats;
                text.label x=(BAR_LEFT) y=(top + 14) { (clip(&row.url, 70)) }
                @for (tone, count, x, width) in segments(s, scale) {
                    rect class={ "bar " (tone) } x=(x) y=(top + 20) width=(width) height="16" {
                        title { (count) " " (tone_name(tone)) }
                    }
                }
                text.rate x=(CHART_WIDTH) y=(top + 33) text-anchor="end" {
                    (rate_text(s)) " ok · " (s.retrying + s.queued) " waiting"
                }
            }
        }
    }
}

/// The pieces of one stacked bar: (tone, count, x, width), empty ones
/// left out, each at least 2 units wide so that a few events stay visible.
fn segments(s: &EndpointStats, scale: impl Fn(u64) -> f64) -> Vec<(&'static str, u64, f64, f64)> {
    let parts = [
        ("ok", s.succeeded),
        ("warn", s.retrying + s.queued),
        ("bad", s.failed),
    ];
    let mut x = f64::from(BAR_LEFT);
    let mut pieces = Vec::new();
    for (tone, count) in parts.into_iter().filter(|(_, count)| *count > 0) {
        let width = scale(count).max(2.0);
        pieces.push((tone, count, x, width));
        x += width;
    }
    pieces
}

fn tone_name(tone: &str) -> &'static str {
    match tone {
        "ok" => "succeeded",
        "warn" => "retrying or queued",
        _ => "failed",
    }
}

async fn overview(session: Session, State(state): State<AppState>) -> PortalResult {
    let since = now_ms() - WINDOW_MS;
    let stats = state
        .store
        .endpoint_stats(session.org_id.clone(), since)
        .await?;
    let endpoints = state.store.all_endpoints(session.org_id.clone()).await?;
    let rows = rows(stats, &endpoints);

    let sum = |f: fn(&EndpointStats) -> u64| rows.iter().map(|r| f(&r.stats)).sum::<u64>();
    let succeeded = sum(|s| s.succeeded);
    let failed = sum(|s| s.failed);
    let backlog = sum(|s| s.retrying + s.queued);
    let total = succeeded + failed + backlog;
    let rate = success_rate(succeeded, failed)
        .map(|r| format!("{r:.1}%"))
        .unwrap_or_else(|| "—".into());

    let body = html! {
        p.lead { "Webhook events created in the last 24 hours." }
        ul.cards {
            li { span.number { (total) } span.what { "events" } }
            li { span.number { (rate) } span.what { "delivered of those decided" } }
            li { span.number { (backlog) } span.what { "waiting to be retried or sent" } }
            li { span.number { (failed) } span.what { "failed for good" } }
        }
        @if rows.is_empty() {
            p {
                "No events in the last 24 hours. "
                a href="/portal/event-types" { "Send a test event" } " to see one go through."
            }
        } @else {
            h2 { "Per endpoint" }
            ul.legend aria-hidden="true" {
                li { span.swatch.ok {} "Succeeded" }
                li { span.swatch.warn {} "Retrying or queued" }
                li { span.swatch.bad {} "Failed" }
            }
            (chart(&rows))
            div.scroll {
                table {
                    caption { "The chart's numbers" }
                    thead { tr {
                        th scope="col" { "Endpoint" }
                        th scope="col" { "Succeeded" }
                        th scope="col" { "Retrying" }
                        th scope="col" { "Queued" }
                        th scope="col" { "Failed" }
                        th scope="col" { "Success rate" }
                    } }
                    tbody {
                        @for row in &rows {
                            tr {
                                td.wrap {
                                    a href={ "/portal/endpoints/" (row.stats.endpoint_id) } {
                                        (row.url)
                                    }
                                }
                                td { (row.stats.succeeded) }
                                td { (row.stats.retrying) }
                                td { (row.stats.queued) }
                                td { (row.stats.failed) }
                                td { (rate_text(&row.stats)) }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&state, &session, Nav::Overview, "Overview", body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_decided_events_only() {
        assert_eq!(success_rate(0, 0), None);
        assert_eq!(success_rate(3, 1), Some(75.0));
        assert_eq!(success_rate(5, 0), Some(100.0));
    }

    #[test]
    fn long_urls_are_clipped_with_a_mark() {
        assert_eq!(clip("https://a.example/", 70), "https://a.example/");
        assert_eq!(clip("abcdef", 4), "abc…");
    }

    #[test]
    fn the_chart_escapes_urls_and_scales_to_the_busiest() {
        let stats = |id: &str, succeeded| EndpointStats {
            endpoint_id: id.into(),
            succeeded,
            ..EndpointStats::default()
        };
        let rows = vec![
            Row {
                url: "<b>x</b>".into(),
                stats: stats("a", 10),
            },
            Row {
                url: "y".into(),
                stats: stats("b", 5),
            },
        ];
        let svg = chart(&rows).into_string();
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"), "{svg}");
        assert!(svg.contains(r#"width="720""#), "{svg}");
        assert!(svg.contains(r#"width="360""#), "{svg}");
    }
}
