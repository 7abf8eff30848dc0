//! Webhook events across all of an organisation's endpoints: the list
//! (search by event id, endpoint URL or type; status tick boxes; time range;
//! keyset paging through the store's cursors), the detail of one event with
//! every attempt, and manual retry of a `Retrying` or `Failed` event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use hookgate_protocol::catalogue;
use maud::{html, Markup};

use super::endpoints::event_type_select;
use super::view::{self, badge, post_button, Nav};
use super::Session;
use super::{after_retry, render, Fields, Form, PortalError, PortalResult, Query};
use crate::api::AppState;
use crate::now_ms;
use crate::store::{
    Attempt, Cursor, Delivery, DeliveryKind, DeliveryState, EventSearch, PageRequest,
};

/// Events per page.
const PAGE_SIZE: usize = 25;

/// The statuses a user can tick, in the order shown.
const STATUSES: [&str; 3] = ["Success", "Retrying", "Failed"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/events", get(list))
        .route("/portal/events/{event_id}", get(show))
        .route("/portal/events/{event_id}/retry", post(retry))
}

fn bad_request(message: impl Into<String>) -> PortalError {
    PortalError::new(StatusCode::BAD_REQUEST, message)
}

/// Paging from the `before` and `after` fields of a list's query.
pub(super) fn page_request(query: &Fields) -> PortalResult<PageRequest> {
    let cursor = |name: &str| match query.get(name) {
        None => Ok(None),
        Some(text) => Cursor::decode(text)
            .map(Some)
            .ok_or_else(|| bad_request(format!("{name} is not a cursor from this portal"))),
    };
    Ok(PageRequest {
        limit: PAGE_SIZE,
        before: cursor("before")?,
        after: cursor("after")?,
    })
}

/// The `from` and `until` fields as Unix ms.
pub(super) fn time_range(query: &Fields) -> PortalResult<(Option<i64>, Option<i64>)> {
    let read = |name: &str| match query.get(name) {
        None => Ok(None),
        Some(text) => view::parse_input_time(text).map(Some).ok_or_else(|| {
            bad_request(format!(
                "{name} must be a date and time such as 2024-05-01T13:30"
            ))
        }),
    };
    Ok((read("from")?, read("until")?))
}

/// The store search a list query asks for. The search box takes an event
/// id, an event type or part of an endpoint URL, recognised in that order.
fn search_from(org_id: String, query: &Fields) -> PortalResult<EventSearch> {
    let mut search = EventSearch {
        org_id,
        event_type: query.get("type").map(str::to_owned),
        page: page_request(query)?,
        ..EventSearch::default()
    };
    if let Some(text) = query.get("q") {
        if uuid::Uuid::parse_str(text).is_ok() {
            search.event_id = Some(text.to_ascii_lowercase());
        } else if catalogue::find(text).is_some() && search.event_type.is_none() {
            search.event_type = Some(text.to_owned());
        } else {
            search.url_contains = Some(text.to_owned());
        }
    }
    let ticked = query.all("status");
    if ticked.len() < STATUSES.len() {
        for status in &ticked {
            let state = DeliveryState::from_webhook_status(status)
                .ok_or_else(|| bad_request(format!("{status:?} is not an event status")))?;
            search.states.push(state);
        }
    }
    (search.created_from, search.created_until) = time_range(query)?;
    Ok(search)
}

/// Whether a manual retry can be asked for.
fn retriable(delivery: &Delivery) -> bool {
    matches!(
        delivery.state,
        DeliveryState::Pending | DeliveryState::Failed
    )
}

/// The status tick boxes and time range, shared with callback messages.
pub(super) fn status_and_time_filters(query: &Fields, statuses: &[&str]) -> Markup {
    let ticked = query.all("status");
    let from = query.get("from").unwrap_or_default();
    let until = query.get("until").unwrap_or_default();
    html! {
        fieldset.statuses {
            legend { "Status" }
            @for status in statuses {
                @let id = format!("status-{}", status.to_lowercase());
                div.check {
                    input id=(id) type="checkbox" name="status" value=(status)
                        checked[ticked.iter().any(|t| t == status)];
                    label for=(id) { (status) }
                }
            }
        }
        div {
            label for="from" { "From (UTC)" }
            input #from type="datetime-local" name="from" value=(from);
        }
        div {
            label for="until" { "Until (UTC)" }
            input #until type="datetime-local" name="until" value=(until);
        }
    }
}

async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(query): Query,
) -> PortalResult {
    let search = search_from(session.org_id.clone(), &query)?;
    let slice = state.store.search_events(search).await?;
    let here = {
        let filters = query.encode_without(&[]);
        if filters.is_empty() {
            "/portal/events".to_owned()
        } else {
            format!("/portal/events?{filters}")
        }
    };

    let body = html! {
        form.filters method="get" action="/portal/events" role="search" {
            div {
                label for="q" { "Event id, URL or type" }
                input #q type="search" name="q" value=(query.get("q").unwrap_or_default());
            }
            div {
                label for="type" { "Event type" }
                (event_type_select("type", query.get("type")))
            }
            (status_and_time_filters(&query, &STATUSES))
            button type="submit" { "Search" }
        }
        @if slice.items.is_empty() {
            p { "No event matches." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Event" }
                        th scope="col" { "Type" }
                        th scope="col" { "Endpoint" }
                        th scope="col" { "Status" }
                        th scope="col" { "Attempts" }
                        th scope="col" { "Created" }
                        th scope="col" { span.visually-hidden { "Action" } }
                    } }
                    tbody {
                        @for d in &slice.items {
                            @let status = d.state.webhook_status();
                            tr {
                                td.mono {
                                    a href={ "/portal/events/" (d.delivery_id) } {
                                        (short_id(&d.delivery_id))
                                    }
                                }
                                td.mono { (d.event_type.as_deref().unwrap_or_default()) }
                                td.wrap { (d.url) }
                                td { (badge(status)) }
                                td { (d.attempts) "/" (d.max_attempts) }
                                td { (view::time(d.created_timestamp)) }
                                td {
                                    (post_button(
                                        &session,
                                        &format!("/portal/events/{}/retry", d.delivery_id),
                                        &here,
                                        "Retry",
                                        retriable(d),
                                    ))
                                }
                            }
                        }
                    }
                }
            }
        }
        (view::pager(
            "/portal/events",
            &query.encode_without(&["before", "after"]),
            slice.before,
            slice.after,
        ))
    };
    render(&state, &session, Nav::Events, "Webhook events", body).await
}

/// The first block of a UUID: enough to tell rows apart on a phone.
pub(super) fn short_id(id: &str) -> &str {
    id.split('-').next().unwrap_or(id)
}

async fn load(state: &AppState, session: &Session, event_id: String) -> PortalResult<Delivery> {
    match state
        .store
        .delivery(session.org_id.clone(), event_id)
        .await?
    {
        Some(d)
            if matches!(
                d.kind,
                DeliveryKind::Webhook | DeliveryKind::Waas1Notification
            ) =>
        {
            Ok(d)
        }
        _ => Err(PortalError::not_found("event")),
    }
}

async fn show(
    session: Session,
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    Query(query): Query,
) -> PortalResult {
    let delivery = load(&state, &session, event_id).await?;
    let attempts = state.store.attempts(delivery.delivery_id.clone()).await?;
    let path = format!("/portal/events/{}", delivery.delivery_id);
    let body = html! {
        @if query.get("done") == Some("retried") {
            (view::notice("Retry queued: the next attempt goes out now."))
        }
        dl.facts {
            dt { "Event id" } dd.mono { (delivery.delivery_id) }
            dt { "Type" } dd.mono { (delivery.event_type.as_deref().unwrap_or_default()) }
            dt { "Endpoint" } dd.mono {
                a href={ "/portal/endpoints/" (delivery.target_id) } { (delivery.url) }
            }
            dt { "Status" } dd { (badge(delivery.state.webhook_status())) }
            dt { "Attempts" } dd { (delivery.attempts) " of " (delivery.max_attempts) }
            @if delivery.state == DeliveryState::Pending {
                dt { "Next attempt" } dd { (view::time(delivery.next_attempt_at)) }
            }
            dt { "Created" } dd { (view::time(delivery.created_timestamp)) }
        }
        (post_button(&session, &format!("{path}/retry"), &path, "Retry now", retriable(&delivery)))
        h2 { "Body" }
        pre.body { code { (view::pretty_body(&delivery.body)) } }
        h2 { "Attempts" }
        (attempt_log(&attempts))
    };
    render(&state, &session, Nav::Events, "Webhook event", body).await
}

/// Every attempt of a delivery: status, response time, response body and
/// why it failed. Shared with callback messages.
pub(super) fn attempt_log(attempts: &[Attempt]) -> Markup {
    html! {
        @if attempts.is_empty() {
            p { "No attempt yet." }
        }
        ol.attempts {
            @for a in attempts {
                li {
                    h3 {
                        "Attempt " (a.attempt_no) " · "
                        @if a.success { (badge("Success")) } @else { (badge("Failed")) }
                    }
                    dl.facts {
                        dt { "Sent" } dd { (view::time(a.created_timestamp)) }
                        dt { "Response status" }
                        dd { (a.response_status_code.map(|c| c.to_string()).unwrap_or("none".into())) }
                        dt { "Response time" } dd { (a.response_time) " ms" }
                        @if let Some(reason) = &a.failure_reason {
                            dt { "Failure reason" } dd { (reason) }
                        }
                    }
                    details {
                        summary {
                            "Response body"
                            @if a.response_truncated { " (cut at 64 KiB)" }
                        }
                        pre.body { code { (String::from_utf8_lossy(&a.response_body)) } }
                    }
                }
            }
        }
    }
}

async fn retry(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
    form: Form,
) -> PortalResult {
    let Form { session, fields } = form;
    let delivery = load(&state, &session, event_id).await?;
    state
        .store
        .retry_now(session.org_id, delivery.delivery_id.clone(), now_ms())
        .await?;
    state.dispatcher.wake();
    tracing::info!(event_id = %delivery.delivery_id, "portal: manual retry");

    let detail = format!("/portal/events/{}", delivery.delivery_id);
    Ok(after_retry(&detail, fields.get("back")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_box_takes_an_id_a_type_or_a_url() {
        let search = |q: &str| search_from("o".into(), &Fields::parse(q)).unwrap();
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(search(&format!("q={id}")).event_id.as_deref(), Some(id));
        let typed = search("q=wallets.created");
        assert_eq!(typed.event_type.as_deref(), Some("wallets.created"));
        assert_eq!(
            search("q=hooks.example").url_contains.as_deref(),
            Some("hooks.example")
        );
    }

    #[test]
    fn ticking_every_status_filters_nothing() {
        let search = |q: &str| search_from("o".into(), &Fields::parse(q)).unwrap();
        assert!(search("status=Success&status=Retrying&status=Failed")
            .states
            .is_empty());
        assert_eq!(
            search("status=Retrying&status=Failed").states,
            vec![DeliveryState::Pending, DeliveryState::Failed]
        );
        assert!(search_from("o".into(), &Fields::parse("status=Nope")).is_err());
        assert!(search_from("o".into(), &Fields::parse("from=yesterday")).is_err());
        assert!(search_from("o".into(), &Fields::parse("after=zz")).is_err());
    }
}
