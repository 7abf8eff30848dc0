//! The producer surface: what the wallet platform calls, with the admin
//! token. Organisations, their API keys, and publishing events.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::{secret_hash, Admin};
use super::events::publish;
use super::{ApiError, ApiJson, AppState};
use crate::error::Error;
use crate::now_ms;
use crate::store::{ApiKey, Org, Published};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/producer/orgs", post(create_org))
        .route("/producer/orgs/{org_id}/api_keys", post(create_api_key))
        .route("/producer/v2/events", post(publish_event))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
}

async fn create_org(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewOrg>,
) -> Result<(StatusCode, Json<Org>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::invalid("name must be 1 to 200 characters"));
    }
    let org = Org {
        org_id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_timestamp: now_ms(),
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_org(org).await?),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiKey {
    name: String,
    public_key: Option<String>,
}

async fn create_api_key(
    _: Admin,
    State(state): State<AppState>,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name_length = body.name.trim().chars().count();
    if name_length == 0 || name_length > 200 {
        return Err(ApiError::invalid("name must be 1 to 200 characters"));
    }
    if let Some(key) = &body.public_key {
        hookgate_protocol::signing::cobo_v2::parse_public_key(key)
            .map_err(|e| ApiError::invalid(format!("public_key: {e}")))?;
        // A signed request names its key by the public key alone: one key
        // must lead to one organisation.
        let normalised = key.trim().to_ascii_lowercase();
        if state
            .store
            .api_key_by_public_key(normalised)
            .await?
            .is_some()
        {
            return Err(Error::Conflict(
                "this public_key is already registered for an API key; generate a new key pair"
                    .into(),
            )
            .into());
        }
    }

    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let secret = format!("hgk_{}", hex::encode(raw));
    let key = ApiKey {
        api_key_id: uuid::Uuid::new_v4().to_string(),
        org_id,
        name: body.name.trim().to_owned(),
        public_key: body.public_key.map(|k| k.trim().to_ascii_lowercase()),
        created_timestamp: now_ms(),
    };
    let key = state
        .store
        .create_api_key(key, secret_hash(&secret))
        .await?;

    let mut answer = serde_json::to_value(&key).expect("an API key serialises");
    answer["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEvent {
    org_id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: Map<String, Value>,
    idempotency_key: Option<String>,
}

async fn publish_event(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewEvent>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    if let Some(key) = &body.idempotency_key {
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::invalid(
                "idempotency_key must be 1 to 255 characters",
            ));
        }
    }
    let published = publish(
        &state,
        body.org_id,
        &body.event_type,
        body.data,
        body.idempotency_key,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(published)))
}
