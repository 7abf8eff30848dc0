//! WaaS 1.0 API callbacks beside 2.0: the organisation's two 1.0 URLs
//! (transaction notifications, withdrawal confirmations), and the producer
//! call that pushes a 1.0 body to them.
//!
//! 1.0 traffic is signed with the server's secp256k1 key and goes only to
//! 1.0 URLs; 2.0 traffic never reaches them. Notifications are listed and
//! retried through the same event API as 2.0 events (their endpoint is the
//! organisation's 1.0 notification endpoint); confirmations are decided
//! and read back like 2.0 callback messages, and fail closed the same way.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookgate_protocol::waas1::{cobo_transaction_id, to_python_json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Admin, OrgCaller};
use super::callbacks::ask_and_wait;
use super::endpoints::check_url;
use super::{ApiError, ApiJson, AppState};
use crate::now_ms;
use crate::store::{protocol, CallbackRequest, Waas1Notification, Waas1Url, Waas1Urls};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/developers/waas1_callbacks", get(show).put(update))
        .route("/producer/v1/notifications", post(notify))
}

fn urls_json(urls: &Waas1Urls) -> Value {
    json!({
        "transaction_notification": urls.notification.as_ref().map(|e| json!({
            "endpoint_id": e.endpoint_id,
            "url": e.url,
        })),
        "withdrawal_confirmation": urls.confirmation.as_ref().map(|e| json!({
            "callback_endpoint_id": e.callback_endpoint_id,
            "url": e.url,
        })),
    })
}

async fn show(caller: OrgCaller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(urls_json(
        &state.store.waas1_urls(caller.org_id).await?,
    )))
}

/// Each field: absent leaves the URL as it is, `null` removes it, a string
/// sets it (revoking the previous one).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    transaction_notification_url: Option<Value>,
    withdrawal_confirmation_url: Option<Value>,
}

fn url_change(
    name: &str,
    value: Option<Value>,
    allow: &[ipnet::IpNet],
) -> Result<Option<Option<String>>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(url)) => {
            let url = url.trim().to_owned();
            check_url(&url, allow)?;
            Ok(Some(Some(url)))
        }
        Some(_) => Err(ApiError::invalid(format!(
            "{name} must be a URL string or null"
        ))),
    }
}

async fn update(
    caller: OrgCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Update>,
) -> Result<Json<Value>, ApiError> {
    let changes = [
        (
            Waas1Url::Notification,
            url_change(
                "transaction_notification_url",
                body.transaction_notification_url,
                &state.settings.network.allow_cidrs,
            )?,
        ),
        (
            Waas1Url::Confirmation,
            url_change(
                "withdrawal_confirmation_url",
                body.withdrawal_confirmation_url,
                &state.settings.network.allow_cidrs,
            )?,
        ),
    ];

    let mut urls = state.store.waas1_urls(caller.org_id.clone()).await?;
    for (which, change) in changes {
        if let Some(url) = change {
            urls = state
                .store
                .set_waas1_url(caller.org_id.clone(), which, url, now_ms())
                .await?;
        }
    }
    Ok(Json(urls_json(&urls)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Notify {
    org_id: String,
    kind: String,
    /// A JSON object (written once, as Cobo's 1.0 servers wrote JSON) or a
    /// string holding the exact body bytes to send.
    body: Value,
    /// For withdrawal confirmations: how long to wait for the decision.
    wait_ms: Option<u64>,
}

/// The exact bytes to send, and the parsed body.
fn body_bytes(body: Value) -> Result<(Vec<u8>, Value), ApiError> {
    match body {
        Value::Object(_) => Ok((to_python_json(&body), body)),
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(parsed @ Value::Object(_)) => Ok((text.into_bytes(), parsed)),
            _ => Err(ApiError::invalid(
                "body, given as a string, must hold a JSON object",
            )),
        },
        _ => Err(ApiError::invalid(
            "body must be a JSON object or a string holding one",
        )),
    }
}

async fn notify(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<Notify>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (bytes, parsed) = body_bytes(request.body)?;
    match request.kind.as_str() {
        "transaction" => {
            let notification = Waas1Notification {
                org_id: request.org_id,
                body: bytes,
                now: now_ms(),
                lease: state.dispatcher.hot_lease(),
                max_attempts: state.dispatcher.waas1_notification_max_attempts(),
            };
            match state.store.notify_waas1(notification).await? {
                None => Ok((
                    StatusCode::OK,
                    Json(json!({
                        "event_id": null,
                        "status": "NotConfigured",
                        "detail": "the organisation has no WaaS 1.0 transaction notification URL",
                    })),
                )),
                Some(mut notified) => {
                    state.metrics.published.inc();
                    state.dispatcher.submit(std::mem::take(&mut notified.jobs));
                    Ok((
                        StatusCode::ACCEPTED,
                        Json(json!({
                            "event_id": notified.event_id,
                            "endpoint_id": notified.endpoint_id,
                            "status": "Retrying",
                        })),
                    ))
                }
            }
        }
        "withdrawal_confirmation" => {
            let text = |name: &str| parsed[name].as_str().unwrap_or_default().to_owned();
            let question = CallbackRequest {
                protocol: protocol::WAAS1,
                org_id: request.org_id,
                api_key_id: String::new(),
                request_id: text("request_id"),
                transaction_id: cobo_transaction_id(&parsed).to_owned(),
                wallet_id: String::new(),
                body: bytes,
                now: now_ms(),
                lease: state.dispatcher.hot_lease(),
                max_attempts: state.dispatcher.callback_max_attempts(),
            };
            if question.request_id.is_empty() {
                return Err(ApiError::invalid(
                    "a withdrawal confirmation needs body.request_id: it is how the \
                     question is recognised when asked again",
                ));
            }
            let wait = Duration::from_millis(request.wait_ms.unwrap_or(0));
            Ok((
                StatusCode::OK,
                Json(ask_and_wait(&state, question, wait).await?),
            ))
        }
        other => Err(ApiError::invalid(format!(
            "kind {other:?} is not one of transaction, withdrawal_confirmation"
        ))),
    }
}
