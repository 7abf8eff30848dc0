//! Webhook endpoints: the list (filtered by status and event type, searched
//! by URL or description), registering, changing the subscription or
//! description, and revoking after a confirmation. The server's public keys
//! sit under the list, for receivers to copy.
//!
//! Validation is the API's own (`api::endpoints`), so a URL refused there is
//! refused here with the same words.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};

use super::catalogue::groups;
use super::view::{self, badge, csrf, Nav};
use super::{render, see_other, Form, PortalError, PortalResult, Query, Session};
use crate::api::endpoints::{check_description, check_events, check_url};
use crate::api::AppState;
use crate::now_ms;
use crate::store::{endpoint_status, protocol, Endpoint, EndpointChange};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/endpoints", get(list).post(create))
        .route("/portal/endpoints/new", get(new_page))
        .route("/portal/endpoints/{endpoint_id}", get(show).post(update))
        .route(
            "/portal/endpoints/{endpoint_id}/revoke",
            get(confirm_revoke).post(revoke),
        )
}

/// Whether `endpoint` passes the list's filters.
fn matches(
    endpoint: &Endpoint,
    status: Option<&str>,
    event_type: Option<&str>,
    text: &str,
) -> bool {
    let text = text.to_lowercase();
    status.is_none_or(|s| endpoint.status == s)
        && event_type.is_none_or(|t| endpoint.subscribed_events.iter().any(|e| e == t))
        && (text.is_empty()
            || endpoint.url.to_lowercase().contains(&text)
            || endpoint.description.to_lowercase().contains(&text))
}

async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(query): Query,
) -> PortalResult {
    let status = query.get("status");
    let event_type = query.get("event_type");
    let text = query.get("q").unwrap_or_default();
    let endpoints: Vec<Endpoint> = state
        .store
        .all_endpoints(session.org_id.clone())
        .await?
        .into_iter()
        .filter(|e| matches(e, status, event_type, text))
        .collect();

    let body = html! {
        p { a.button href="/portal/endpoints/new" { "Register an endpoint" } }
        form.filters method="get" action="/portal/endpoints" role="search" {
            div {
                label for="q" { "URL or description" }
                input #q type="search" name="q" value=(text);
            }
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "Any" }
                    @for s in [endpoint_status::ACTIVE, endpoint_status::INACTIVE] {
                        option value=(s) selected[status == Some(s)] { (s) }
                    }
                }
            }
            div {
                label for="event_type" { "Event type" }
                (event_type_select("event_type", event_type))
            }
            button type="submit" { "Filter" }
        }
        @if endpoints.is_empty() {
            p { "No endpoint matches." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "URL" }
                        th scope="col" { "Description" }
                        th scope="col" { "Status" }
                        th scope="col" { "Events" }
                        th scope="col" { "Created" }
                    } }
                    tbody {
                        @for e in &endpoints {
                            tr {
                                td.wrap {
                                    a href={ "/portal/endpoints/" (e.endpoint_id) } { (e.url) }
                                    @if e.protocol == protocol::WAAS1 {
                                        " " span.badge.muted { "WaaS 1.0" }
                                    }
                                }
                                td.wrap { (e.description) }
                                td { (badge(&e.status)) }
                                td { (e.subscribed_events.len()) }
                                td { (view::time(e.created_timestamp)) }
                            }
                        }
                    }
                }
            }
        }
        (public_keys(&state))
    };
    render(&state, &session, Nav::Endpoints, "Endpoints", body).await
}

fn public_keys(state: &AppState) -> Markup {
    html! {
        section aria-labelledby="keys" {
            h2 #keys { "Public keys" }
            p { "Receivers verify every delivery with these keys." }
            div.field {
                label for="key-v2" { "WaaS 2.0 (Ed25519)" }
                input #key-v2.mono type="text" readonly value=(state.public_key_v2);
            }
            div.field {
                label for="key-v1" { "WaaS 1.0 (secp256k1)" }
                input #key-v1.mono type="text" readonly value=(state.public_key_v1);
            }
        }
    }
}

/// A `<select>` of every event type, grouped by prefix.
pub(super) fn event_type_select(name: &str, selected: Option<&str>) -> Markup {
    html! {
        select id=(name) name=(name) {
            option value="" { "Any" }
            @for (prefix, types) in groups() {
                optgroup label=(prefix) {
                    @for t in types {
                        option value=(t.event_type) selected[selected == Some(t.event_type.as_str())] {
                            (t.event_type)
                        }
                    }
                }
            }
        }
    }
}

/// Tick boxes of every event type, one fieldset per prefix.
fn event_type_boxes(chosen: &[String]) -> Markup {
    html! {
        fieldset.types {
            legend { "Event types" }
            @for (prefix, types) in groups() {
                fieldset.group {
                    legend { (prefix) }
                    @for t in types {
                        @let id = format!("ev-{}", t.event_type.replace('.', "-"));
                        div.check {
                            input id=(id) type="checkbox" name="subscribed_events"
                                value=(t.event_type) checked[chosen.contains(&t.event_type)];
                            label for=(id) { (t.event_type) }
                        }
                    }
                }
            }
        }
    }
}

fn endpoint_form(session: &Session, url: &str, description: &str, chosen: &[String]) -> Markup {
    html! {
        form.stack method="post" action="/portal/endpoints" {
            (csrf(session))
            div.field {
                label for="url" { "URL" }
                input #url type="url" name="url" value=(url) required
                    placeholder="https://example.com/cobo/webhooks";
            }
            div.field {
                label for="description" { "Description" }
                input #description type="text" name="description" value=(description)
                    maxlength="1000";
            }
            (event_type_boxes(chosen))
            button type="submit" { "Register" }
        }
    }
}

async fn new_page(session: Session, State(state): State<AppState>) -> PortalResult {
    let body = endpoint_form(&session, "", "", &[]);
    render(
        &state,
        &session,
        Nav::Endpoints,
        "Register an endpoint",
        body,
    )
    .await
}

async fn create(State(state): State<AppState>, form: Form) -> PortalResult {
    let Form { session, fields } = form;
    let url = fields.get("url").unwrap_or_default().to_owned();
    let description = fields.get("description").unwrap_or_default().to_owned();
    let chosen = fields.all("subscribed_events");

    let checked = check_url(&url, &state.settings.network.allow_cidrs)
        .and_then(|()| check_description(&description))
        .and_then(|()| check_events(chosen.clone()));
    let events = match checked {
        Ok(events) => events,
        Err(error) => {
            let body = html! {
                p.notice.error role="alert" { (error.message()) }
                (endpoint_form(&session, &url, &description, &chosen))
            };
            let page = render(
                &state,
                &session,
                Nav::Endpoints,
                "Register an endpoint",
                body,
            );
            let mut response = page.await?;
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    };

    let now = now_ms();
    let endpoint = Endpoint {
        endpoint_id: uuid::Uuid::new_v4().to_string(),
        org_id: session.org_id.clone(),
        url,
        subscribed_events: events,
        status: endpoint_status::ACTIVE.into(),
        protocol: protocol::WAAS2.into(),
        description,
        created_timestamp: now,
        updated_timestamp: now,
    };
    let endpoint = state.store.create_endpoint(endpoint).await?;
    Ok(see_other(&format!(
        "/portal/endpoints/{}?done=registered",
        endpoint.endpoint_id
    )))
}

async fn load(state: &AppState, session: &Session, endpoint_id: String) -> PortalResult<Endpoint> {
    state
        .store
        .endpoint(session.org_id.clone(), endpoint_id)
        .await?
        .ok_or_else(|| PortalError::not_found("endpoint"))
}

async fn show(
    session: Session,
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
    Query(query): Query,
) -> PortalResult {
    let endpoint = load(&state, &session, endpoint_id).await?;
    let active = endpoint.status == endpoint_status::ACTIVE;
    let path = format!("/portal/endpoints/{}", endpoint.endpoint_id);
    let events_link = format!("/portal/events?q={}", url_encode(&endpoint.url));
    let body = html! {
        @match query.get("done") {
            Some("registered") => (view::notice("Endpoint registered.")),
            Some("saved") => (view::notice("Changes saved.")),
            Some("revoked") => (view::notice("Endpoint revoked.")),
            _ => {}
        }
        dl.facts {
            dt { "URL" } dd.mono { (endpoint.url) }
            dt { "Status" } dd { (badge(&endpoint.status)) }
            dt { "Endpoint id" } dd.mono { (endpoint.endpoint_id) }
            dt { "Created" } dd { (view::time(endpoint.created_timestamp)) }
            dt { "Updated" } dd { (view::time(endpoint.updated_timestamp)) }
        }
        p { a href=(events_link) { "This endpoint's events" } }
        @if active && endpoint.protocol == protocol::WAAS2 {
            h2 { "Change" }
            form.stack method="post" action=(path) {
                (csrf(&session))
                div.field {
                    label for="description" { "Description" }
                    input #description type="text" name="description"
                        value=(endpoint.description) maxlength="1000";
                }
                (event_type_boxes(&endpoint.subscribed_events))
                button type="submit" { "Save changes" }
            }
            h2 { "Revoke" }
            p {
                "A revoked endpoint receives nothing new, permanently. "
                a.button.danger href={ (path) "/revoke" } { "Revoke…" }
            }
        } @else {
            h2 { "Subscribed event types" }
            ul { @for t in &endpoint.subscribed_events { li.mono { (t) } } }
            p { (endpoint.description) }
        }
    };
    render(&state, &session, Nav::Endpoints, "Endpoint", body).await
}

async fn update(
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
    form: Form,
) -> PortalResult {
    let Form { session, fields } = form;
    let description = fields.get("description").unwrap_or_default().to_owned();
    check_description(&description)?;
    let events = check_events(fields.all("subscribed_events"))?;
    let change = EndpointChange {
        org_id: session.org_id,
        endpoint_id,
        subscribed_events: Some(events),
        description: Some(description),
        status: None,
        now: now_ms(),
    };
    let endpoint = state.store.update_endpoint(change).await?;
    Ok(see_other(&format!(
        "/portal/endpoints/{}?done=saved",
        endpoint.endpoint_id
    )))
}

async fn confirm_revoke(
    session: Session,
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
) -> PortalResult {
    let endpoint = load(&state, &session, endpoint_id).await?;
    let path = format!("/portal/endpoints/{}", endpoint.endpoint_id);
    let body = html! {
        p {
            "Revoke " strong.mono { (endpoint.url) } "? It will receive no new events, and "
            "this cannot be undone: to receive events there again, register it anew."
        }
        form.inline method="post" action={ (path) "/revoke" } {
            (csrf(&session))
            button.danger type="submit" { "Revoke for good" }
        }
        " "
        a href=(path) { "Cancel" }
    };
    render(&state, &session, Nav::Endpoints, "Revoke endpoint", body).await
}

async fn revoke(
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
    form: Form,
) -> PortalResult {
    let change = EndpointChange {
        org_id: form.session.org_id,
        endpoint_id,
        status: Some(endpoint_status::INACTIVE.into()),
        now: now_ms(),
        ..EndpointChange::default()
    };
    let endpoint = state.store.update_endpoint(change).await?;
    Ok(see_other(&format!(
        "/portal/endpoints/{}?done=revoked",
        endpoint.endpoint_id
    )))
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str, description: &str, status: &str, events: &[&str]) -> Endpoint {
        Endpoint {
            endpoint_id: "e".into(),
            org_id: "o".into(),
            url: url.into(),
            subscribed_events: events.iter().map(|e| (*e).to_owned()).collect(),
            status: status.into(),
            protocol: protocol::WAAS2.into(),
            description: description.into(),
            created_timestamp: 0,
            updated_timestamp: 0,
        }
    }

    #[test]
    fn the_list_filters_by_status_type_and_text() {
        let e = endpoint(
            "https://Hooks.example/a",
            "Payments",
            "STATUS_ACTIVE",
            &["wallets.created"],
        );
        assert!(matches(&e, None, None, ""));
        assert!(matches(
            &e,
            Some("STATUS_ACTIVE"),
            Some("wallets.created"),
            "hooks"
        ));
        assert!(matches(&e, None, None, "payMENTS"));
        assert!(!matches(&e, Some("STATUS_INACTIVE"), None, ""));
        assert!(!matches(&e, None, Some("wallets.updated"), ""));
        assert!(!matches(&e, None, None, "other"));
    }
}
