//! axum integration (feature `axum`): an extractor that reads the raw body
//! within a size limit, verifies it, and hands the handler the typed body
//! together with the exact bytes.
//!
//! Put a [`Receiver`] in the router's state (or make it reachable with
//! `FromRef`), then take [`Signed<T>`] as the handler's last argument.
//! A refused request never reaches the handler: it is answered with the
//! status of [`ReceiverError::http_status`] (401 for a bad or missing
//! signature) and a plain-text reason.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ReceiverError;
use crate::verify::{Verified, Verifier};

/// The body limit used unless configured: 1 MiB, far above any event.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A verifier plus the request body limit: the state [`Signed`] needs.
#[derive(Clone, Debug)]
pub struct Receiver {
    verifier: Arc<Verifier>,
    body_limit: usize,
}

impl Receiver {
    /// A receiver checking with `verifier`, with the default body limit.
    pub fn new(verifier: Verifier) -> Self {
        Self {
            verifier: Arc::new(verifier),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// Refuses bodies larger than `limit` bytes with 413.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }
}

/// A verified request: the typed body, the exact bytes that were signed,
/// and what the signature vouched for.
#[derive(Clone, Debug)]
pub struct Signed<T> {
    /// The body, parsed after verifying.
    pub body: T,
    /// The body exactly as received and verified.
    pub raw: Bytes,
    /// Scheme, timestamp and message id of the verified signature.
    pub verified: Verified,
}

impl<S, T> FromRequest<S> for Signed<T>
where
    Receiver: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ReceiverError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let receiver = Receiver::from_ref(state);
        let limit = receiver.body_limit;
        let (parts, body) = request.into_parts();

        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok());
        if declared
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|len| len > limit as u64)
        {
            return Err(ReceiverError::BodyTooLarge { limit });
        }
        let raw = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ReceiverError::BodyTooLarge { limit })?;

        let verified = receiver.verifier.verify(&parts.headers, &raw)?;
        let body = crate::body::parse(&raw)?;
        Ok(Signed {
            body,
            raw,
            verified,
        })
    }
}

impl IntoResponse for ReceiverError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response()
    }
}
