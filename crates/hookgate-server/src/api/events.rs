//! Webhook events: publishing (shared by the producer surface and test
//! triggers), the event lists, attempt logs, manual retry, the catalogue and
//! the server's public keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookgate_protocol::{catalogue, envelope, samples};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::auth::OrgCaller;
use super::{ApiError, ApiJson, ApiQuery, AppState, ListBody, PageParams};
use crate::now_ms;
use crate::store::{
    Attempt, Delivery, DeliveryKind, DeliveryState, EventQuery, PublishRequest, Published,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/webhooks/endpoints/{endpoint_id}/events", get(list))
        .route(
            "/v2/webhooks/endpoints/{endpoint_id}/events/{event_id}",
            get(show),
        )
        .route(
            "/v2/webhooks/endpoints/{endpoint_id}/events/{event_id}/logs",
            get(logs),
        )
        .route(
            "/v2/webhooks/endpoints/{endpoint_id}/events/{event_id}/retry",
            post(retry),
        )
        .route("/v2/webhooks/events/definitions", get(definitions))
        .route("/v2/webhooks/events/trigger", post(trigger))
        .route("/v2/webhooks/public_key", get(public_key))
}

/// Validates and stores an occurrence, then hands its copies to the
/// dispatcher. Answers only once everything is committed.
pub async fn publish(
    state: &AppState,
    org_id: String,
    event_type: &str,
    data: Map<String, Value>,
    idempotency_key: Option<String>,
) -> Result<Published, ApiError> {
    let entry = catalogue::find(event_type).ok_or_else(|| {
        ApiError::invalid(format!(
            "{event_type:?} is not an event type (closest: {})",
            catalogue::closest(event_type, 3).join(", ")
        ))
    })?;
    let data =
        envelope::normalise_data(entry, data).map_err(|e| ApiError::invalid(e.to_string()))?;

    let now = now_ms();
    let data_json = envelope::data_json(&data);
    let request = PublishRequest {
        org_id: org_id.clone(),
        event_type: entry.event_type.clone(),
        data,
        idempotency_key,
        now,
        lease: state.dispatcher.hot_lease(),
        max_attempts: state.dispatcher.webhook_max_attempts(),
    };
    let mut published = state.store.publish(request).await?;

    if !published.replayed {
        state
            .metrics
            .published
            .inc_by(published.events.len() as u64);
    }
    state.dispatcher.submit(std::mem::take(&mut published.jobs));
    if !published.replayed {
        let id = &published.occurrence_id;
        let event_type = &entry.event_type;
        state
            .hub
            .publish(&org_id, id, event_type, &data_json, now)
            .await;
    }
    Ok(published)
}

/// An event as the API shows it: the body's fields plus where it stands.
///
/// A WaaS 1.0 notification's body has no envelope, and its own `status` and
/// `type` mean something else, so it is shown inside one: `event_id`,
/// `url`, `created_timestamp`, `type` and the 1.0 body as `data`.
fn event_view(delivery: &Delivery) -> Value {
    let body = serde_json::from_slice::<Map<String, Value>>(&delivery.body).unwrap_or_default();
    let mut view = match delivery.kind {
        DeliveryKind::Waas1Notification => {
            let mut envelope = Map::new();
            envelope.insert("event_id".into(), json!(delivery.delivery_id));
            envelope.insert("url".into(), json!(delivery.url));
            let created = json!(delivery.created_timestamp);
            envelope.insert("created_timestamp".into(), created);
            envelope.insert("type".into(), json!(delivery.event_type));
            envelope.insert("data".into(), Value::Object(body));
            envelope
        }
        _ => body,
    };
    view.insert("status".into(), json!(delivery.state.webhook_status()));
    if delivery.state == DeliveryState::Pending {
        view.insert(
            "next_retry_timestamp".into(),
            json!(delivery.next_attempt_at),
        );
        view.insert(
            "retries_left".into(),
            json!(delivery.max_attempts.saturating_sub(delivery.attempts)),
        );
    }
    view.insert("endpoint_id".into(), json!(delivery.target_id));
    Value::Object(view)
}

#[derive(Deserialize)]
struct ListParams {
    status: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Only events created at or after this time, Unix ms.
    min_created_timestamp: Option<i64>,
    /// Only events created before this time, Unix ms.
    max_created_timestamp: Option<i64>,
}

fn parse_states(text: Option<&str>) -> Result<Vec<DeliveryState>, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|s| {
            DeliveryState::from_webhook_status(s.trim()).ok_or_else(|| {
                ApiError::invalid(format!(
                    "status {s:?} is not one of Success, Retrying, Failed"
                ))
            })
        })
        .collect()
}

async fn list(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(endpoint_id): Path<String>,
    ApiQuery(params): ApiQuery<ListParams>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ListBody<Value>>, ApiError> {
    state
        .store
        .endpoint(caller.org_id.clone(), endpoint_id.clone())
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint"))?;

    let query = EventQuery {
        org_id: caller.org_id,
        endpoint_id: Some(endpoint_id),
        states: parse_states(params.status.as_deref())?,
        event_type: params.event_type.filter(|t| !t.is_empty()),
        created_from: params.min_created_timestamp,
        created_until: params.max_created_timestamp,
        page: page.request()?,
    };
    let page = state.store.list_events(query).await?;
    Ok(Json(ListBody::from_page(page, |d| event_view(&d))))
}

async fn load(
    state: &AppState,
    org_id: String,
    endpoint_id: &str,
    event_id: String,
) -> Result<Delivery, ApiError> {
    // Callback deliveries are messages, not events: they are read and
    // retried through the callback message API only.
    match state.store.delivery(org_id, event_id).await? {
        Some(delivery)
            if delivery.target_id == endpoint_id && !delivery.kind.asks_for_decision() =>
        {
            Ok(delivery)
        }
        _ => Err(ApiError::not_found("event")),
    }
}

async fn show(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path((endpoint_id, event_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let delivery = load(&state, caller.org_id, &endpoint_id, event_id).await?;
    Ok(Json(event_view(&delivery)))
}

/// One attempt as the API shows it.
#[derive(Serialize)]
struct LogView {
    id: String,
    created_timestamp: i64,
    request_headers: Map<String, Value>,
    request_body: String,
    response_status_code: Option<u16>,
    response_body: String,
    response_body_truncated: bool,
    response_time: u64,
    success: bool,
    failure_reason: Option<String>,
}

fn log_view(delivery: &Delivery, attempt: Attempt) -> LogView {
    LogView {
        id: format!("{}-{}", delivery.delivery_id, attempt.attempt_no),
        created_timestamp: attempt.created_timestamp,
        request_headers: attempt
            .request_headers
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect(),
        request_body: String::from_utf8_lossy(&delivery.body).into_owned(),
        response_status_code: attempt.response_status_code,
        response_body: String::from_utf8_lossy(&attempt.response_body).into_owned(),
        response_body_truncated: attempt.response_truncated,
        response_time: attempt.response_time,
        success: attempt.success,
        failure_reason: attempt.failure_reason,
    }
}

/// One attempt as JSON, for webhook and callback logs alike.
pub(super) fn log_json(delivery: &Delivery, attempt: Attempt) -> Value {
    serde_json::to_value(log_view(delivery, attempt)).expect("a log view serialises")
}

async fn logs(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path((endpoint_id, event_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let delivery = load(&state, caller.org_id, &endpoint_id, event_id).await?;
    let attempts = state.store.attempts(delivery.delivery_id.clone()).await?;
    let views: Vec<LogView> = attempts
        .into_iter()
        .map(|a| log_view(&delivery, a))
        .collect();
    let total = views.len();
    Ok(Json(json!({
        "data": views,
        "pagination": {"before": "", "after": "", "total_count": total}
    })))
}

async fn retry(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path((endpoint_id, event_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let delivery = load(&state, caller.org_id.clone(), &endpoint_id, event_id).await?;
    state
        .store
        .retry_now(caller.org_id, delivery.delivery_id, now_ms())
        .await?;
    state.dispatcher.wake();
    Ok((StatusCode::CREATED, Json(json!({"retried": true}))))
}

async fn definitions(_: OrgCaller) -> Json<Value> {
    let all: Vec<Value> = catalogue::all()
        .iter()
        .map(|t| {
            json!({
                "event_type": t.event_type,
                "description": t.description,
                "data_type": t.data_type,
            })
        })
        .collect();
    Json(Value::Array(all))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Trigger {
    event_type: String,
    override_data: Option<Value>,
}

async fn trigger(
    caller: OrgCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Trigger>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    trigger_sample(&state, caller.org_id, &body.event_type, body.override_data).await?;
    Ok((StatusCode::CREATED, Json(json!({"triggered": true}))))
}

/// Publishes the catalogue's sample of `event_type`, with `override_data`
/// shallow-merged into its data: a test event (API and portal alike).
pub(crate) async fn trigger_sample(
    state: &AppState,
    org_id: String,
    event_type: &str,
    override_data: Option<Value>,
) -> Result<Published, ApiError> {
    let entry = catalogue::find(event_type).ok_or_else(|| {
        ApiError::invalid(format!(
            "{event_type:?} is not an event type (closest: {})",
            catalogue::closest(event_type, 3).join(", ")
        ))
    })?;
    let mut data = samples::sample_data(entry);
    match override_data {
        None | Some(Value::Null) => {}
        Some(Value::Object(overrides)) => samples::shallow_merge(&mut data, overrides),
        Some(_) => return Err(ApiError::invalid("override_data must be a JSON object")),
    }

    publish(state, org_id, &entry.event_type, data, None).await
}

async fn public_key(_: OrgCaller, State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "public_key": &*state.public_key_v2,
        "keys": [
            {"scheme": "cobo_v2_ed25519", "public_key": &*state.public_key_v2},
            {"scheme": "cobo_v1_secp256k1", "public_key": &*state.public_key_v1},
        ]
    }))
}
