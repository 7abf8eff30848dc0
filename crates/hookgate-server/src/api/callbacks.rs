//! Approval callbacks: callback endpoints linked to API keys, the messages
//! sent to them, their attempts, and manual retry (organisation surface);
//! asking for and reading a decision (producer surface).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookgate_protocol::envelope;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::{Admin, OrgCaller};
use super::endpoints::{check_description, check_status_change, check_url};
use super::{ApiError, ApiJson, ApiQuery, AppState, ListBody, PageParams};
use crate::approval::may_proceed;
use crate::now_ms;
use crate::store::{
    endpoint_status, message_status, protocol, CallbackAsked, CallbackEndpoint,
    CallbackEndpointChange, CallbackMessage, CallbackMessageQuery, CallbackRequest, Delivery,
    DeliveryState,
};

/// Longest a producer may wait for a decision in one request.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// How often a waiting request rereads the message, to see decisions
/// recorded by other nodes.
const WAIT_POLL: Duration = Duration::from_millis(250);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v2/developers/callback_endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/v2/developers/callback_endpoints/{callback_endpoint_id}",
            get(show_endpoint).put(update_endpoint),
        )
        .route("/v2/developers/callback_messages", get(list_messages))
        .route(
            "/v2/developers/callback_messages/{message_id}",
            get(show_message),
        )
        .route(
            "/v2/developers/callback_messages/{message_id}/logs",
            get(message_logs),
        )
        .route(
            "/v2/developers/callback_messages/{message_id}/retry",
            post(retry_message),
        )
        .route("/producer/v2/callbacks", post(ask))
        .route("/producer/v2/callbacks/{message_id}", get(decision))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCallbackEndpoint {
    url: String,
    /// The API key whose transactions it decides; the caller's own key when
    /// absent.
    api_key_id: Option<String>,
    #[serde(default)]
    description: String,
}

async fn create_endpoint(
    caller: OrgCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewCallbackEndpoint>,
) -> Result<(StatusCode, Json<CallbackEndpoint>), ApiError> {
    let url = body.url.trim().to_owned();
    check_url(&url, &state.settings.network.allow_cidrs)?;
    check_description(&body.description)?;
    let now = now_ms();
    let endpoint = CallbackEndpoint {
        callback_endpoint_id: uuid::Uuid::new_v4().to_string(),
        org_id: caller.org_id,
        api_key_id: body.api_key_id.unwrap_or(caller.api_key_id),
        url,
        status: endpoint_status::ACTIVE.into(),
        protocol: protocol::WAAS2.into(),
        description: body.description,
        created_timestamp: now,
        updated_timestamp: now,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_callback_endpoint(endpoint).await?),
    ))
}

async fn list_endpoints(
    caller: OrgCaller,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ListBody<CallbackEndpoint>>, ApiError> {
    let page = state
        .store
        .list_callback_endpoints(caller.org_id, page.request()?)
        .await?;
    Ok(Json(ListBody::from_page(page, |e| e)))
}

async fn show_endpoint(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CallbackEndpoint>, ApiError> {
    let endpoint = state.store.callback_endpoint(caller.org_id, id).await?;
    endpoint
        .map(Json)
        .ok_or_else(|| ApiError::not_found("callback endpoint"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackEndpointUpdate {
    url: Option<String>,
    description: Option<String>,
    status: Option<String>,
}

async fn update_endpoint(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CallbackEndpointUpdate>,
) -> Result<Json<CallbackEndpoint>, ApiError> {
    if let Some(url) = &body.url {
        check_url(url.trim(), &state.settings.network.allow_cidrs)?;
    }
    if let Some(description) = &body.description {
        check_description(description)?;
    }
    let revoke = check_status_change(body.status.as_deref())?;
    let change = CallbackEndpointChange {
        org_id: caller.org_id,
        callback_endpoint_id: id,
        url: body.url.map(|u| u.trim().to_owned()),
        description: body.description,
        status: revoke,
        now: now_ms(),
    };
    Ok(Json(state.store.update_callback_endpoint(change).await?))
}

/// A message as the API shows it, with each callback endpoint's progress.
fn message_view(message: &CallbackMessage, deliveries: &[Delivery]) -> Value {
    let data: Value = serde_json::from_slice(&message.body).unwrap_or(Value::Null);
    let endpoints: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            let mut view = json!({
                "callback_endpoint_id": d.target_id,
                "url": d.url,
                "attempts": d.attempts,
                "result": d.result,
                "status": match d.state {
                    DeliveryState::Pending => "Retrying",
                    DeliveryState::Succeeded => "Answered",
                    DeliveryState::Failed => "Failed",
                    DeliveryState::Cancelled => "Cancelled",
                },
            });
            if d.state == DeliveryState::Pending {
                view["next_retry_timestamp"] = json!(d.next_attempt_at);
                view["retries_left"] = json!(d.max_attempts.saturating_sub(d.attempts));
            }
            view
        })
        .collect();
    json!({
        "id": message.message_id,
        "created_timestamp": message.created_timestamp,
        "updated_timestamp": message.updated_timestamp,
        "request_id": message.request_id,
        "transaction_id": message.transaction_id,
        "wallet_id": message.wallet_id,
        "url": deliveries.first().map(|d| d.url.as_str()).unwrap_or_default(),
        "data": data,
        "status": message.status,
        "result": message.result,
        "endpoints": endpoints,
    })
}

#[derive(Deserialize)]
struct MessageFilters {
    callback_message_ids: Option<String>,
    request_ids: Option<String>,
    transaction_ids: Option<String>,
    wallet_ids: Option<String>,
    status: Option<String>,
}

fn comma_list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

async fn list_messages(
    caller: OrgCaller,
    State(state): State<AppState>,
    ApiQuery(filters): ApiQuery<MessageFilters>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ListBody<Value>>, ApiError> {
    let statuses = comma_list(filters.status);
    for status in &statuses {
        if ![
            message_status::RETRYING,
            message_status::APPROVED,
            message_status::DENIED,
            message_status::FAILED,
        ]
        .contains(&status.as_str())
        {
            return Err(ApiError::invalid(format!(
                "status {status:?} is not one of Retrying, Approved, Denied, Failed"
            )));
        }
    }
    let query = CallbackMessageQuery {
        org_id: caller.org_id,
        message_ids: comma_list(filters.callback_message_ids),
        request_ids: comma_list(filters.request_ids),
        transaction_ids: comma_list(filters.transaction_ids),
        wallet_ids: comma_list(filters.wallet_ids),
        statuses,
        page: page.request()?,
    };
    let page = state.store.list_callback_messages(query).await?;

    let mut views = Vec::with_capacity(page.items.len());
    for message in &page.items {
        let deliveries = state
            .store
            .deliveries_of(message.message_id.clone())
            .await?;
        views.push(message_view(message, &deliveries));
    }
    let mut views = views.into_iter();
    Ok(Json(ListBody::from_page(page, |_| {
        views.next().unwrap_or_default()
    })))
}

async fn load_message(
    state: &AppState,
    org_id: Option<String>,
    message_id: String,
) -> Result<(CallbackMessage, Vec<Delivery>), ApiError> {
    let message = state
        .store
        .callback_message(org_id, message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("callback message"))?;
    let deliveries = state
        .store
        .deliveries_of(message.message_id.clone())
        .await?;
    Ok((message, deliveries))
}

async fn show_message(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (message, deliveries) = load_message(&state, Some(caller.org_id), message_id).await?;
    Ok(Json(message_view(&message, &deliveries)))
}

async fn message_logs(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (_, deliveries) = load_message(&state, Some(caller.org_id), message_id).await?;
    let mut logs = Vec::new();
    for delivery in &deliveries {
        for attempt in state.store.attempts(delivery.delivery_id.clone()).await? {
            let mut view = super::events::log_json(delivery, attempt);
            view["callback_endpoint_id"] = json!(delivery.target_id);
            logs.push(view);
        }
    }
    logs.sort_by_key(|log| log["created_timestamp"].as_i64().unwrap_or_default());
    let total = logs.len();
    Ok(Json(json!({
        "data": logs,
        "pagination": {"before": "", "after": "", "total_count": total}
    })))
}

async fn retry_message(
    caller: OrgCaller,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state
        .store
        .retry_callback_message(caller.org_id, message_id, now_ms())
        .await?;
    state.dispatcher.wake();
    Ok((StatusCode::CREATED, Json(json!({"retried": true}))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    org_id: String,
    api_key_id: String,
    transaction: Map<String, Value>,
    wait_ms: Option<u64>,
}

/// The producer's view of a decision.
fn decision_json(message: Option<&CallbackMessage>) -> Value {
    match message {
        None => json!({
            "message_id": null,
            "status": "NotConfigured",
            "result": null,
            "proceed": true,
            "detail": "no callback endpoint is linked to this API key: no check is configured",
        }),
        Some(m) => json!({
            "message_id": m.message_id,
            "status": m.status,
            "result": m.result,
            "proceed": may_proceed(&m.status),
        }),
    }
}

async fn ask(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Ask>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    envelope::check_transaction(&body.transaction)
        .map_err(|e| ApiError::invalid(format!("transaction: {e}")))?;
    let text_field = |name: &str| -> Result<String, ApiError> {
        match body.transaction.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            None | Some(Value::Null) if name == "request_id" => Ok(String::new()),
            _ => Err(ApiError::invalid(format!(
                "transaction.{name} must be a string"
            ))),
        }
    };
    let request = CallbackRequest {
        protocol: protocol::WAAS2,
        org_id: body.org_id.clone(),
        api_key_id: body.api_key_id.clone(),
        request_id: text_field("request_id")?,
        transaction_id: text_field("transaction_id")?,
        wallet_id: text_field("wallet_id")?,
        body: serde_json::to_vec(&body.transaction).expect("a JSON map serialises"),
        now: now_ms(),
        lease: state.dispatcher.hot_lease(),
        max_attempts: state.dispatcher.callback_max_attempts(),
    };

    let wait = Duration::from_millis(body.wait_ms.unwrap_or(0));
    Ok((
        StatusCode::OK,
        Json(ask_and_wait(&state, request, wait).await?),
    ))
}

/// Stores the question, hands its deliveries to the dispatcher, and waits
/// up to `wait` (at most [`MAX_WAIT`]) for the decision. Shared by WaaS 2.0
/// callbacks and WaaS 1.0 withdrawal confirmations.
pub(super) async fn ask_and_wait(
    state: &AppState,
    request: CallbackRequest,
    wait: Duration,
) -> Result<Value, ApiError> {
    let mut progress = state.dispatcher.callback_progress();
    let (message, jobs) = match state.store.ask_callback(request).await? {
        CallbackAsked::NoEndpoint => return Ok(decision_json(None)),
        CallbackAsked::Message { message, jobs } => (message, jobs),
    };
    state.dispatcher.submit(jobs);

    let message = wait_for_decision(state, message, wait.min(MAX_WAIT), &mut progress).await?;
    Ok(decision_json(Some(&message)))
}

/// Returns as soon as the message leaves `Retrying`, or when `wait` ends.
async fn wait_for_decision(
    state: &AppState,
    mut message: CallbackMessage,
    wait: Duration,
    progress: &mut tokio::sync::broadcast::Receiver<String>,
) -> Result<CallbackMessage, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    while message.status == message_status::RETRYING && tokio::time::Instant::now() < deadline {
        let nap = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + WAIT_POLL));
        tokio::select! {
            _ = nap => {}
            changed = progress.recv() => {
                if matches!(&changed, Ok(id) if *id != message.message_id) {
                    continue;
                }
            }
        }
        if let Some(fresh) = state
            .store
            .callback_message(None, message.message_id.clone())
            .await?
        {
            message = fresh;
        }
    }
    Ok(message)
}

async fn decision(
    _: Admin,
    State(state): State<AppState>,
    Path(message_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let message = state
        .store
        .callback_message(None, message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("callback message"))?;
    Ok(Json(decision_json(Some(&message))))
}
