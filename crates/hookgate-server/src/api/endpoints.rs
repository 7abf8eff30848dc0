//! Webhook endpoints of an organisation: register, list, get, change,
//! revoke. Endpoints are never deleted; revocation is permanent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookgate_protocol::catalogue;
use serde::Deserialize;

use super::auth::OrgCaller;
use super::{ApiError, ApiJson, ApiQuery, AppState, ListBody, PageParams};
use crate::dispatch::netpolicy::NetworkPolicy;
use crate::now_ms;
use crate::store::{endpoint_status, protocol, Endpoint, EndpointChange, EndpointQuery};

/// Longest endpoint URL: what Cobo's SDK accepts in an event's `url`.
const MAX_URL_LEN: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/webhooks/endpoints", get(list).post(create))
        .route(
            "/v2/webhooks/endpoints/{endpoint_id}",
            get(show).put(update),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    subscribed_events: Vec<String>,
    #[serde(default)]
    description: String,
}

/// Checks an endpoint URL: absolute http(s), a host, no user info, within
/// the length Cobo's SDK accepts, and not a literal address (or `localhost`)
/// that the network policy `allow` would refuse at every attempt. Names
/// are checked again at each attempt, on the address actually dialled.
pub fn check_url(url: &str, allow: &[ipnet::IpNet]) -> Result<(), ApiError> {
    if url.len() > MAX_URL_LEN {
        return Err(ApiError::invalid(format!(
            "url is longer than {MAX_URL_LEN} characters"
        )));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| ApiError::invalid(format!("url is not valid: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::invalid("url must start with http:// or https://"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::invalid(
            "url must not contain a user name or password",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid("url must name a host"));
    }
    if parsed.fragment().is_some() {
        return Err(ApiError::invalid("url must not contain a #fragment"));
    }

    let policy = NetworkPolicy::new(allow.to_vec());
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) if name.trim_end_matches('.') == "localhost" => {
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        _ => None,
    };
    if let Some(ip) = literal.filter(|ip| !policy.permits(*ip)) {
        return Err(ApiError::invalid(format!(
            "{ip} is not a public address, so deliveries to it are refused; \
             to allow it (for local testing), add its network to [network] allow_cidrs \
             (HOOKGATE_NETWORK__ALLOW_CIDRS) and restart the server"
        )));
    }
    Ok(())
}

pub(crate) fn check_events(events: Vec<String>) -> Result<Vec<String>, ApiError> {
    if events.is_empty() {
        return Err(ApiError::invalid(
            "subscribed_events must name at least one event type",
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(events.len());
    for event_type in events {
        if catalogue::find(&event_type).is_none() {
            let hint = catalogue::closest(&event_type, 1).join("");
            return Err(ApiError::invalid(format!(
                "{event_type:?} is not an event type (did you mean {hint:?}? \
                 GET /v2/webhooks/events/definitions lists them all)"
            )));
        }
        if !checked.contains(&event_type) {
            checked.push(event_type);
        }
    }
    Ok(checked)
}

/// A `status` in a change: only revocation changes anything (`STATUS_ACTIVE`
/// is accepted and leaves the endpoint as it is). Gives the status to store.
pub(crate) fn check_status_change(status: Option<&str>) -> Result<Option<String>, ApiError> {
    match status {
        None | Some(endpoint_status::ACTIVE) => Ok(None),
        Some(endpoint_status::INACTIVE) => Ok(Some(endpoint_status::INACTIVE.into())),
        Some(_) => Err(ApiError::invalid(format!(
            "status can only be set to {} (revoke)",
            endpoint_status::INACTIVE
        ))),
    }
}

pub(crate) fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "description is longer than 1000 characters",
        ));
    }
    Ok(())
}

async fn create(
    caller: OrgCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<Endpoint>), ApiError> {
    let url = body.url.trim().to_owned();
    check_url(&url, &state.settings.network.allow_cidrs)?;
    check_description(&body.description)?;
    let now = now_ms();
    let endpoint = Endpoint {
        endpoint_id: uuid::Uuid::new_v4().to_string(),
        org_id: caller.org_id,
        url,
        subscribed_events: check_events(body.subscribed_events)?,
        status: endpoint_status::ACTIVE.into(),
        protocol: protocol::WAAS2.into(),
        description: body.description,
        created_timestamp: now,
        updated_timestamp: now,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_endpoint(endpoint).await?),
    ))
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    event_type: Option<String>,
}

async fn list(
    caller: OrgCaller,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ListBody<Endpoint>>, ApiError> {
    let query = EndpointQuery {
        org_id: caller.org_id,
        status: params.status.filter(|s| !s.is_empty()),
        event_type: params.event_type.filter(|s| !s.is_empty()),
        page: page.request()?,
    };
    let page = state.store.list_endpoints(query).await?;
    Ok(Json(ListBody::from_page(page, |e| e)))
}

async fn show(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    let endpoint = state.store.endpoint(caller.org_id, endpoint_id).await?;
    endpoint
        .map(Json)
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    subscribed_events: Option<Vec<String>>,
    description: Option<String>,
    status: Option<String>,
    url: Option<String>,
}

async fn update(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
    ApiJson(body): ApiJson<Change>,
) -> Result<Json<Endpoint>, ApiError> {
    if body.url.is_some() {
        return Err(ApiError::invalid(
            "an endpoint's url cannot change; register a new endpoint and revoke this one",
        ));
    }
    let revoke = check_status_change(body.status.as_deref())?;
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let change = EndpointChange {
        org_id: caller.org_id,
        endpoint_id,
        subscribed_events: body.subscribed_events.map(check_events).transpose()?,
        description: body.description,
        status: revoke,
        now: now_ms(),
    };
    Ok(Json(state.store.update_endpoint(change).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let loopback: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(check_url("https://hooks.example.com/cobo?x=1", &[]).is_ok());
        assert!(check_url("http://127.0.0.1:9000/", &loopback).is_ok());
        assert!(check_url("http://localhost:9000/", &loopback).is_ok());
        for refused in [
            "http://127.0.0.1:9000/",
            "http://localhost./",
            "http://[::1]/",
            "http://10.0.0.8/",
        ] {
            let error = check_url(refused, &[]).unwrap_err();
            assert!(format!("{error:?}").contains("allow_cidrs"), "{refused}");
        }
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "not a url",
            "http://",
            "https://example.com/#frag",
        ] {
            assert!(check_url(bad, &[]).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(500)), &[]).is_err());
    }

    #[test]
    fn unknown_event_type_is_refused_with_a_hint() {
        let error = check_events(vec!["wallets.transaction.suceeded".into()]).unwrap_err();
        assert!(format!("{error:?}").contains("wallets.transaction.succeeded"));
        assert!(check_events(vec![]).is_err());
        let deduped =
            check_events(vec!["wallets.created".into(), "wallets.created".into()]).unwrap();
        assert_eq!(deduped, vec!["wallets.created".to_owned()]);
    }
}
