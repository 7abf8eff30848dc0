//! Callback messages: the list (statuses, the transaction's ids, time
//! range, keyset paging), the detail of one message with each callback
//! endpoint's attempts, and manual retry of a `Retrying` or `Failed` one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use super::events::{attempt_log, page_request, short_id, status_and_time_filters, time_range};
use super::view::{self, badge, post_button, Nav};
use super::Session;
use super::{after_retry, render, Fields, Form, PortalError, PortalResult, Query};
use crate::api::AppState;
use crate::now_ms;
use crate::store::{message_status, CallbackMessage, CallbackSearch, DeliveryState};

/// The statuses a user can tick, in the order shown.
const STATUSES: [&str; 4] = [
    message_status::APPROVED,
    message_status::DENIED,
    message_status::RETRYING,
    message_status::FAILED,
];

/// The id fields of the search form: (field, label).
const ID_FIELDS: [(&str, &str); 4] = [
    ("transaction_id", "Transaction id"),
    ("request_id", "Request id"),
    ("wallet_id", "Wallet id"),
    ("message_id", "Message id"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/callbacks", get(list))
        .route("/portal/callbacks/{message_id}", get(show))
        .route("/portal/callbacks/{message_id}/retry", post(retry))
}

fn search_from(org_id: String, query: &Fields) -> PortalResult<CallbackSearch> {
    let ticked = query.all("status");
    for status in &ticked {
        if !STATUSES.contains(&status.as_str()) {
            return Err(PortalError::new(
                StatusCode::BAD_REQUEST,
                format!("{status:?} is not a callback message status"),
            ));
        }
    }
    let (created_from, created_until) = time_range(query)?;
    let id = |name: &str| query.get(name).map(str::to_owned);
    Ok(CallbackSearch {
        org_id,
        message_id: id("message_id"),
        transaction_id: id("transaction_id"),
        request_id: id("request_id"),
        wallet_id: id("wallet_id"),
        statuses: if ticked.len() < STATUSES.len() {
            ticked
        } else {
            Vec::new()
        },
        created_from,
        created_until,
        page: page_request(query)?,
    })
}

fn retriable(message: &CallbackMessage) -> bool {
    message.status == message_status::RETRYING || message.status == message_status::FAILED
}

async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(query): Query,
) -> PortalResult {
    let search = search_from(session.org_id.clone(), &query)?;
    let slice = state.store.search_callback_messages(search).await?;
    let filters = query.encode_without(&[]);
    let here = if filters.is_empty() {
        "/portal/callbacks".to_owned()
    } else {
        format!("/portal/callbacks?{filters}")
    };

    let body = html! {
        form.filters method="get" action="/portal/callbacks" role="search" {
            @for (name, label) in ID_FIELDS {
                div {
                    label for=(name) { (label) }
                    input id=(name) type="search" name=(name)
                        value=(query.get(name).unwrap_or_default());
                }
            }
            (status_and_time_filters(&query, &STATUSES))
            button type="submit" { "Search" }
        }
        @if slice.items.is_empty() {
            p { "No callback message matches." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Message" }
                        th scope="col" { "Transaction" }
                        th scope="col" { "Request" }
                        th scope="col" { "Wallet" }
                        th scope="col" { "Status" }
                        th scope="col" { "Created" }
                        th scope="col" { span.visually-hidden { "Action" } }
                    } }
                    tbody {
                        @for m in &slice.items {
                            tr {
                                td.mono {
                                    a href={ "/portal/callbacks/" (m.message_id) } {
                                        (short_id(&m.message_id))
                                    }
                                }
                                td.mono.wrap { (m.transaction_id) }
                                td.mono.wrap { (m.request_id) }
                                td.mono.wrap { (m.wallet_id) }
                                td { (badge(&m.status)) }
                                td { (view::time(m.created_timestamp)) }
                                td {
                                    (post_button(
                                        &session,
                                        &format!("/portal/callbacks/{}/retry", m.message_id),
                                        &here,
                                        "Retry",
                                        retriable(m),
                                    ))
                                }
                            }
                        }
                    }
                }
            }
        }
        (view::pager(
            "/portal/callbacks",
            &query.encode_without(&["before", "after"]),
            slice.before,
            slice.after,
        ))
    };
    render(&state, &session, Nav::Callbacks, "Callback messages", body).await
}

async fn load(
    state: &AppState,
    session: &Session,
    message_id: String,
) -> PortalResult<CallbackMessage> {
    state
        .store
        .callback_message(Some(session.org_id.clone()), message_id)
        .await?
        .ok_or_else(|| PortalError::not_found("callback message"))
}

async fn show(
    session: Session,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
    Query(query): Query,
) -> PortalResult {
    let message = load(&state, &session, message_id).await?;
    let deliveries = state
        .store
        .deliveries_of(message.message_id.clone())
        .await?;
    let mut logs = Vec::with_capacity(deliveries.len());
    for delivery in &deliveries {
        logs.push(state.store.attempts(delivery.delivery_id.clone()).await?);
    }
    let path = format!("/portal/callbacks/{}", message.message_id);

    let body = html! {
        @if query.get("done") == Some("retried") {
            (view::notice("Retry queued: the callback endpoints are asked again now."))
        }
        dl.facts {
            dt { "Message id" } dd.mono { (message.message_id) }
            dt { "Status" } dd { (badge(&message.status)) }
            dt { "Result" } dd { (message.result.as_deref().unwrap_or("none yet")) }
            dt { "Transaction id" } dd.mono { (message.transaction_id) }
            dt { "Request id" } dd.mono { (message.request_id) }
            dt { "Wallet id" } dd.mono { (message.wallet_id) }
            dt { "Created" } dd { (view::time(message.created_timestamp)) }
            dt { "Updated" } dd { (view::time(message.updated_timestamp)) }
        }
        (post_button(&session, &format!("{path}/retry"), &path, "Retry now", retriable(&message)))
        h2 { "Body" }
        pre.body { code { (view::pretty_body(&message.body)) } }
        @for (delivery, attempts) in deliveries.iter().zip(&logs) {
            section.endpoint {
                h2 { "Callback endpoint " span.mono { (delivery.url) } }
                p {
                    (badge(match delivery.state {
                        DeliveryState::Pending => "Retrying",
                        DeliveryState::Succeeded => "Answered",
                        DeliveryState::Failed => "Failed",
                        DeliveryState::Cancelled => "Cancelled",
                    }))
                    " " (delivery.attempts) " of " (delivery.max_attempts) " attempts"
                    @if let Some(result) = &delivery.result { ", answered " strong { (result) } }
                }
                (attempt_log(attempts))
            }
        }
    };
    render(&state, &session, Nav::Callbacks, "Callback message", body).await
}

async fn retry(
    State(state): State<AppState>,
    Path(message_id): Path<String>,
    form: Form,
) -> PortalResult {
    let Form { session, fields } = form;
    let message = load(&state, &session, message_id).await?;
    state
        .store
        .retry_callback_message(session.org_id, message.message_id.clone(), now_ms())
        .await?;
    state.dispatcher.wake();
    tracing::info!(message_id = %message.message_id, "portal: manual callback retry");

    let detail = format!("/portal/callbacks/{}", message.message_id);
    Ok(after_retry(&detail, fields.get("back")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_reads_ids_and_statuses() {
        let query = Fields::parse("transaction_id=t1&status=Denied&status=Failed");
        let search = search_from("o".into(), &query).unwrap();
        assert_eq!(search.transaction_id.as_deref(), Some("t1"));
        assert_eq!(search.statuses, vec!["Denied", "Failed"]);
        assert!(search_from("o".into(), &Fields::parse("status=Success")).is_err());
    }
}
