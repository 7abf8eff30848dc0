//! The event type catalogue, grouped by prefix, with a button per type that
//! sends a test event: the catalogue's sample, exactly as the API's
//! `POST /v2/webhooks/events/trigger` sends it.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use hookgate_protocol::catalogue::{self, EventType};
use maud::html;

use super::view::{self, csrf, Nav};
use super::{render, see_other, Form, PortalResult, Query, Session};
use crate::api::events::trigger_sample;
use crate::api::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/event-types", get(list))
        .route("/portal/event-types/trigger", post(trigger))
}

/// The catalogue grouped by the first segment of each type's name
/// (`wallets`, `payment`, ...), groups in catalogue order.
pub fn groups() -> Vec<(&'static str, Vec<&'static EventType>)> {
    let mut groups: Vec<(&'static str, Vec<&'static EventType>)> = Vec::new();
    for entry in catalogue::all() {
        let prefix = entry.event_type.split('.').next().unwrap_or_default();
        match groups.iter_mut().find(|(p, _)| *p == prefix) {
            Some((_, types)) => types.push(entry),
            None => groups.push((prefix, vec![entry])),
        }
    }
    groups
}

async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(query): Query,
) -> PortalResult {
    let sent = query.get("sent");
    let count = query.get("to").unwrap_or("0");
    let body = html! {
        @if let Some(sent) = sent {
            (view::notice(&format!(
                "Test event {sent} sent to {count} subscribed endpoint(s) and any listening CLI."
            )))
        }
        p {
            "A test event carries the type's sample data and goes to every active endpoint "
            "subscribed to its type."
        }
        @for (prefix, types) in groups() {
            section aria-labelledby={ "group-" (prefix) } {
                h2 id={ "group-" (prefix) } { (prefix) }
                div.scroll {
                    table {
                        thead { tr {
                            th scope="col" { "Event type" }
                            th scope="col" { "Data type" }
                            th scope="col" { "Description" }
                            th scope="col" { span.visually-hidden { "Action" } }
                        } }
                        tbody {
                            @for t in types {
                                tr {
                                    td.mono { (t.event_type) }
                                    td { (t.data_type.as_deref().unwrap_or("—")) }
                                    td.wrap { (t.description) }
                                    td {
                                        form.inline method="post"
                                            action="/portal/event-types/trigger" {
                                            (csrf(&session))
                                            input type="hidden" name="event_type"
                                                value=(t.event_type);
                                            button type="submit"
                                                aria-label={ "Send a test " (t.event_type) } {
                                                "Send test"
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    render(&state, &session, Nav::EventTypes, "Event types", body).await
}

async fn trigger(State(state): State<AppState>, form: Form) -> PortalResult {
    let event_type = form.fields.get("event_type").unwrap_or_default();
    let published = trigger_sample(&state, form.session.org_id.clone(), event_type, None).await?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("sent", event_type)
        .append_pair("to", &published.events.len().to_string())
        .finish();
    Ok(see_other(&format!("/portal/event-types?{query}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_lands_in_the_group_of_its_prefix() {
        let groups = groups();
        let total: usize = groups.iter().map(|(_, t)| t.len()).sum();
        assert_eq!(total, catalogue::all().len());
        let wallets = groups.iter().find(|(p, _)| *p == "wallets").unwrap();
        assert!(wallets
            .1
            .iter()
            .any(|t| t.event_type == "wallets.transaction.created"));
        assert!(groups.iter().all(|(p, types)| types
            .iter()
            .all(|t| t.event_type.starts_with(&format!("{p}.")))));
    }
}
