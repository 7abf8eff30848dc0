//! Credentials: the admin token for the producer surface, and organisation
//! API keys (bearer secrets) for `/v2`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};

/// The caller holds the admin token.
pub struct Admin;

/// The caller acts for an organisation.
pub struct OrgCaller {
    /// The organisation.
    pub org_id: String,
    /// The key used.
    pub api_key_id: String,
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Hex SHA-256 of an API key secret: what the store keeps.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares without an early exit, so timing reveals nothing of the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("send the admin token as Authorization: Bearer <token>")
        })?;
        if same(token.as_bytes(), state.admin_token.as_bytes()) {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("the admin token is wrong"))
        }
    }
}

impl FromRequestParts<AppState> for OrgCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let secret = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized("send an API key secret as Authorization: Bearer <secret>")
        })?;
        let key = state
            .store
            .api_key_by_secret_hash(secret_hash(secret))
            .await?
            .ok_or_else(|| ApiError::unauthorized("unknown API key secret"))?;
        Ok(OrgCaller {
            org_id: key.org_id,
            api_key_id: key.api_key_id,
        })
    }
}
