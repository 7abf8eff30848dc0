//! The HTTP API: the organisation surface under `/v2`, the producer surface
//! under `/producer`, and operations (`/healthz`, `/readyz`, `/metrics`).
//!
//! Every error leaves as `{"error_code", "error_message", "error_id"}`; the
//! id is logged with the error so an operator can find the line a user
//! quotes.

pub(crate) mod auth;
mod callbacks;
pub(crate) mod endpoints;
mod error;
pub(crate) mod events;
mod ops;
mod producer;
mod stream;
mod waas1;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dispatch::Dispatcher;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::{Cursor, Page, PageRequest, Store};

pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Where fresh deliveries go.
    pub dispatcher: Dispatcher,
    /// Bearer token of the producer surface.
    pub admin_token: Arc<str>,
    /// Hex Ed25519 public key (WaaS 2.0).
    pub public_key_v2: Arc<str>,
    /// Hex compressed secp256k1 public key (WaaS 1.0).
    pub public_key_v1: Arc<str>,
    /// Exported metrics.
    pub metrics: Arc<Metrics>,
    /// Settings in force.
    pub settings: Arc<Settings>,
    /// Live occurrences for listening command-line clients.
    pub hub: Arc<crate::stream::Hub>,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .merge(endpoints::routes())
        .merge(callbacks::routes())
        .merge(waas1::routes())
        .merge(events::routes())
        .merge(producer::routes())
        .merge(ops::routes())
        .merge(stream::routes())
        .merge(crate::portal::routes())
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            auth::SignedRequests::new(state.clone()),
            auth::signed_requests,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A JSON body whose rejections speak our error format.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::from_json_rejection(rejection)),
        }
    }
}

/// Query parameters whose rejections speak our error format (axum's own
/// answer a bare text line, such as for `limit=x`).
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// Paging parameters of every list.
#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    limit: Option<usize>,
    before: Option<String>,
    after: Option<String>,
}

impl PageParams {
    fn request(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(10);
        if !(1..=50).contains(&limit) {
            return Err(ApiError::invalid("limit must be between 1 and 50"));
        }
        let cursor = |text: &Option<String>, name: &str| match text.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => Cursor::decode(text)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("{name} is not a cursor from this API"))),
        };
        Ok(PageRequest {
            limit,
            before: cursor(&self.before, "before")?,
            after: cursor(&self.after, "after")?,
        })
    }
}

/// A list answer: `{"data": [...], "pagination": {...}}`.
#[derive(Serialize)]
pub struct ListBody<T> {
    data: Vec<T>,
    pagination: Pagination,
}

#[derive(Serialize)]
struct Pagination {
    before: String,
    after: String,
    total_count: u64,
}

impl<T> ListBody<T> {
    fn from_page<U>(page: Page<U>, map: impl FnMut(U) -> T) -> Self {
        Self {
            data: page.items.into_iter().map(map).collect(),
            pagination: Pagination {
                before: page.before.map(Cursor::encode).unwrap_or_default(),
                after: page.after.map(Cursor::encode).unwrap_or_default(),
                total_count: page.total_count,
            },
        }
    }
}
