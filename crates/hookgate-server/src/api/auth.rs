//! Credentials: the admin token for the producer surface, and organisation
//! API keys for `/v2`, either as a bearer secret or as Cobo-style signed
//! requests.
//!
//! A signed request carries `Biz-Api-Key` (the hex Ed25519 public key
//! registered with the API key), `Biz-Api-Nonce` (the send time in Unix ms)
//! and `Biz-Api-Signature`: hex Ed25519 over
//! SHA-256(SHA-256(`METHOD|/v2/path|nonce|sorted query|body`)). The
//! signature covers the body, which extractors of request parts never see,
//! so [`signed_requests`] checks it as middleware: it reads the body once,
//! verifies, and leaves the caller in the request's extensions for
//! [`OrgCaller`]. Nonces further than [`NONCE_WINDOW_MS`] from the server's
//! clock are refused, and so is a nonce a key has already used within the
//! window ([`NonceBook`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{ApiError, AppState};
use crate::now_ms;

/// Header naming the signing public key of a signed request.
pub const BIZ_API_KEY: &str = "biz-api-key";
/// Header carrying the nonce (send time, Unix ms) of a signed request.
pub const BIZ_API_NONCE: &str = "biz-api-nonce";
/// Header carrying the signature of a signed request.
pub const BIZ_API_SIGNATURE: &str = "biz-api-signature";

/// How far a nonce may be from the server's clock, in either direction.
pub const NONCE_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Most nonces remembered for one key within the window. A key that signs
/// more requests than this within [`NONCE_WINDOW_MS`] is refused until older
/// nonces expire: refusing is safe, forgetting a live nonce would let it be
/// replayed.
const NONCES_PER_KEY: usize = 100_000;

/// The caller holds the admin token.
pub struct Admin;

/// The caller acts for an organisation.
#[derive(Clone, Debug)]
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
        if let Some(SignedBy(caller)) = parts.extensions.get::<SignedBy>() {
            return Ok(caller.clone());
        }
        let secret = bearer(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "send an API key secret as Authorization: Bearer <secret>, \
                 or sign the request (Biz-Api-Key, Biz-Api-Nonce, Biz-Api-Signature)",
            )
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

/// Set by [`signed_requests`] on a request whose signature checked out.
#[derive(Clone)]
struct SignedBy(OrgCaller);

/// What [`signed_requests`] needs: the application and the nonces seen.
#[derive(Clone)]
pub struct SignedRequests {
    state: AppState,
    nonces: Arc<NonceBook>,
}

impl SignedRequests {
    /// Checks signed requests to `state`'s API with a fresh nonce book.
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            nonces: Arc::new(NonceBook::default()),
        }
    }
}

/// Middleware: verifies a signed request to `/v2` (any request that
/// carries one of the `Biz-Api-*` headers) and refuses it with 401 when the
/// signature, the key or the nonce is wrong. Other requests pass untouched.
pub async fn signed_requests(
    State(auth): State<SignedRequests>,
    request: Request,
    next: Next,
) -> Response {
    let signed = [BIZ_API_KEY, BIZ_API_NONCE, BIZ_API_SIGNATURE]
        .iter()
        .any(|name| request.headers().contains_key(*name));
    if !signed || !request.uri().path().starts_with("/v2/") {
        return next.run(request).await;
    }

    let (mut parts, body) = request.into_parts();
    let limit = auth.state.settings.max_body_bytes;
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return ApiError::invalid("the request body could not be read (or is too large)")
            .into_response();
    };
    match check_signed(&auth, &parts, &body).await {
        Ok(caller) => {
            parts.extensions.insert(SignedBy(caller));
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(error) => error.into_response(),
    }
}

async fn check_signed(
    auth: &SignedRequests,
    parts: &Parts,
    body: &[u8],
) -> Result<OrgCaller, ApiError> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized(format!(
                    "a signed request needs the headers Biz-Api-Key, Biz-Api-Nonce and \
                     Biz-Api-Signature; {name} is missing"
                ))
            })
    };
    let public_key = header(BIZ_API_KEY)?.to_ascii_lowercase();
    let nonce = header(BIZ_API_NONCE)?;
    let signature = header(BIZ_API_SIGNATURE)?;

    let nonce_ms = check_nonce(nonce, now_ms()).map_err(ApiError::unauthorized)?;
    let message = signed_message(
        parts.method.as_str(),
        parts.uri.path(),
        nonce,
        parts.uri.query(),
        body,
    );
    verify_signature(&public_key, &message, signature).map_err(ApiError::unauthorized)?;

    let key = auth
        .state
        .store
        .api_key_by_public_key(public_key.clone())
        .await?
        .ok_or_else(|| ApiError::unauthorized("Biz-Api-Key is not registered with any API key"))?;
    auth.nonces
        .record(&public_key, nonce_ms, now_ms())
        .map_err(ApiError::unauthorized)?;
    Ok(OrgCaller {
        org_id: key.org_id,
        api_key_id: key.api_key_id,
    })
}

/// Parses a nonce and checks it lies within [`NONCE_WINDOW_MS`] of `now`.
pub fn check_nonce(nonce: &str, now: i64) -> Result<i64, String> {
    let value: i64 = nonce
        .parse()
        .map_err(|_| format!("Biz-Api-Nonce must be a Unix time in ms, got {nonce:?}"))?;
    if value < now - NONCE_WINDOW_MS {
        return Err(format!(
            "Biz-Api-Nonce is stale: {}s older than the server's clock (5 min allowed)",
            (now - value) / 1000
        ));
    }
    if value > now + NONCE_WINDOW_MS {
        return Err(format!(
            "Biz-Api-Nonce is {}s ahead of the server's clock (5 min allowed)",
            (value - now) / 1000
        ));
    }
    Ok(value)
}

/// The query as signed: pairs decoded, sorted by name then value, and
/// encoded again as `application/x-www-form-urlencoded`.
pub fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    pairs.sort();
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The bytes a signed request signs: `METHOD|path|nonce|query|body`.
pub fn signed_message(
    method: &str,
    path: &str,
    nonce: &str,
    query: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let head = format!(
        "{}|{path}|{nonce}|{}|",
        method.to_ascii_uppercase(),
        canonical_query(query)
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    message
}

/// Checks a hex Ed25519 signature over SHA-256(SHA-256(`message`)).
pub fn verify_signature(
    public_key_hex: &str,
    message: &[u8],
    signature_hex: &str,
) -> Result<(), String> {
    let key: [u8; 32] = hex::decode(public_key_hex)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("Biz-Api-Key must be 64 hex characters (an Ed25519 public key)")?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| "Biz-Api-Key is not an Ed25519 key")?;
    let signature: [u8; 64] = hex::decode(signature_hex)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("Biz-Api-Signature must be 128 hex characters (an Ed25519 signature)")?;
    let digest = Sha256::digest(Sha256::digest(message));
    key.verify_strict(&digest, &Signature::from_bytes(&signature))
        .map_err(|_| {
            "Biz-Api-Signature does not match: sign METHOD|/v2/path|nonce|sorted query|body, \
             hashed twice with SHA-256"
                .to_owned()
        })
}

/// The nonces each key used within the window, to refuse replays.
///
/// Memory is bounded: only keys with a valid signature get an entry, nonces
/// older than the window are dropped at every use, and a key holds at most
/// [`NONCES_PER_KEY`].
#[derive(Default)]
pub struct NonceBook {
    keys: Mutex<HashMap<String, BTreeSet<i64>>>,
}

impl NonceBook {
    /// Records `nonce` for `key`, or says why it cannot be used.
    pub fn record(&self, key: &str, nonce: i64, now: i64) -> Result<(), String> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let seen = keys.entry(key.to_owned()).or_default();
        let oldest_kept = now - NONCE_WINDOW_MS;
        *seen = seen.split_off(&oldest_kept);

        if seen.contains(&nonce) {
            return Err(
                "Biz-Api-Nonce was already used by this key: sign each request \
                        with a fresh nonce"
                    .into(),
            );
        }
        if seen.len() >= NONCES_PER_KEY {
            return Err("too many signed requests by this key in 5 minutes".into());
        }
        seen.insert(nonce);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 test 1: a published key pair, never a real credential.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn sign(message: &[u8]) -> String {
        use ed25519_dalek::Signer;
        let seed: [u8; 32] = hex::decode(SEED).unwrap().try_into().unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        hex::encode(
            key.sign(&Sha256::digest(Sha256::digest(message)))
                .to_bytes(),
        )
    }

    #[test]
    fn message_joins_method_path_nonce_sorted_query_and_body() {
        let message = signed_message(
            "get",
            "/v2/webhooks/endpoints",
            "1700000000000",
            Some("status=STATUS_ACTIVE&limit=10&event_type=a%20b"),
            b"",
        );
        assert_eq!(
            String::from_utf8(message).unwrap(),
            "GET|/v2/webhooks/endpoints|1700000000000|\
             event_type=a+b&limit=10&status=STATUS_ACTIVE|"
        );
        let with_body = signed_message("POST", "/v2/x", "1", None, br#"{"a":1}"#);
        assert_eq!(with_body, br#"POST|/v2/x|1||{"a":1}"#);
    }

    #[test]
    fn a_correct_signature_verifies() {
        let message = signed_message("POST", "/v2/webhooks/events/trigger", "5", None, b"{}");
        assert_eq!(verify_signature(PUBLIC, &message, &sign(&message)), Ok(()));
    }

    #[test]
    fn a_changed_body_path_or_query_fails() {
        let message = signed_message("POST", "/v2/a", "5", Some("x=1"), b"{}");
        let signature = sign(&message);
        for other in [
            signed_message("POST", "/v2/a", "5", Some("x=1"), b"{ }"),
            signed_message("POST", "/v2/b", "5", Some("x=1"), b"{}"),
            signed_message("POST", "/v2/a", "5", Some("x=2"), b"{}"),
            signed_message("GET", "/v2/a", "5", Some("x=1"), b"{}"),
            signed_message("POST", "/v2/a", "6", Some("x=1"), b"{}"),
        ] {
            let error = verify_signature(PUBLIC, &other, &signature).unwrap_err();
            assert!(error.contains("does not match"), "{error}");
        }
    }

    #[test]
    fn malformed_keys_and_signatures_are_named() {
        let error = verify_signature("abcd", b"m", &"00".repeat(64)).unwrap_err();
        assert!(error.contains("Biz-Api-Key"), "{error}");
        let error = verify_signature(PUBLIC, b"m", "zz").unwrap_err();
        assert!(error.contains("Biz-Api-Signature"), "{error}");
    }

    #[test]
    fn stale_and_future_nonces_are_refused() {
        let now = 1_700_000_000_000;
        assert_eq!(check_nonce("1700000000000", now), Ok(now));
        assert!(check_nonce(&(now - NONCE_WINDOW_MS).to_string(), now).is_ok());
        let stale = check_nonce(&(now - NONCE_WINDOW_MS - 1).to_string(), now).unwrap_err();
        assert!(stale.contains("stale"), "{stale}");
        let ahead = check_nonce(&(now + NONCE_WINDOW_MS + 1).to_string(), now).unwrap_err();
        assert!(ahead.contains("ahead"), "{ahead}");
        assert!(check_nonce("yesterday", now)
            .unwrap_err()
            .contains("Unix time"));
    }

    #[test]
    fn a_nonce_is_accepted_once_per_key() {
        let book = NonceBook::default();
        let now = 1_700_000_000_000;
        assert!(book.record("k1", now, now).is_ok());
        assert!(book
            .record("k1", now, now)
            .unwrap_err()
            .contains("already used"));
        assert!(book.record("k2", now, now).is_ok(), "keys are independent");
        assert!(book.record("k1", now + 1, now).is_ok());
    }

    #[test]
    fn expired_nonces_are_forgotten() {
        let book = NonceBook::default();
        let start = 1_700_000_000_000;
        for i in 0..10 {
            book.record("k", start + i, start).unwrap();
        }
        book.record(
            "k",
            start + NONCE_WINDOW_MS + 100,
            start + NONCE_WINDOW_MS + 100,
        )
        .unwrap();
        let keys = book.keys.lock().unwrap();
        assert_eq!(
            keys["k"].len(),
            1,
            "nonces older than the window are dropped"
        );
    }
}
