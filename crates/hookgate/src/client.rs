//! A small client of the Hookgate HTTP API, shared by the commands.
//!
//! It authenticates with a bearer secret (an API key secret or the admin
//! token) or signs each request the way Cobo's SDKs do ([`Credential`]).
//! A 4xx answer becomes [`Failure::Refused`] and an unreachable server or a
//! 5xx [`Failure::Unavailable`], so that the exit code tells them apart.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::exit::{usage, Failure};

/// How requests prove who sends them.
#[derive(Clone)]
pub enum Credential {
    /// `Authorization: Bearer <secret>`.
    Bearer(String),
    /// `Biz-Api-Key`, `Biz-Api-Nonce`, `Biz-Api-Signature`, signed with this
    /// Ed25519 key.
    Signed(Arc<SigningKey>),
}

impl Credential {
    /// Signed requests with the key whose 32-byte seed is `seed_hex`.
    pub fn signing(seed_hex: &str) -> anyhow::Result<Self> {
        let seed: [u8; 32] = hex::decode(seed_hex.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                usage("--api-private-key must be 64 hex characters (an Ed25519 seed)")
            })?;
        Ok(Self::Signed(Arc::new(SigningKey::from_bytes(&seed))))
    }
}

/// Talks to one server with one credential.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    credential: Credential,
    http: reqwest::Client,
    last_nonce: Arc<AtomicI64>,
}

impl ApiClient {
    /// A client of the server at `base` (such as `http://127.0.0.1:8080`)
    /// with a bearer `token`.
    pub fn new(base: &str, token: &str) -> Self {
        Self::with_credential(base, Credential::Bearer(token.to_owned()))
            .expect("client configuration")
    }

    /// A client of the server at `base` with `credential`.
    pub fn with_credential(base: &str, credential: Credential) -> anyhow::Result<Self> {
        let base = base.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(usage(format!(
                "the server URL must start with http:// or https://, got {base:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: base.to_owned(),
            credential,
            http,
            last_nonce: Arc::new(AtomicI64::new(0)),
        })
    }

    /// The same server with another bearer credential.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            credential: Credential::Bearer(token.to_owned()),
            ..self.clone()
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` (which may carry a query), JSON answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// POST `body` to `path`, JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// PUT `body` to `path`, JSON answer.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// The headers that authenticate a request of `method` to
    /// `path_and_query` with `body`.
    pub fn auth_headers(
        &self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Vec<(String, String)> {
        match &self.credential {
            Credential::Bearer(token) => vec![("Authorization".into(), format!("Bearer {token}"))],
            Credential::Signed(key) => {
                let nonce = self.next_nonce().to_string();
                let (path, query) = match path_and_query.split_once('?') {
                    Some((path, query)) => (path, Some(query)),
                    None => (path_and_query, None),
                };
                let message = signed_message(method, path, &nonce, query, body);
                let digest = Sha256::digest(Sha256::digest(&message));
                let signature = key.sign(&digest);
                vec![
                    (
                        "Biz-Api-Key".into(),
                        hex::encode(key.verifying_key().as_bytes()),
                    ),
                    ("Biz-Api-Nonce".into(), nonce),
                    (
                        "Biz-Api-Signature".into(),
                        hex::encode(signature.to_bytes()),
                    ),
                ]
            }
        }
    }

    /// A fresh nonce: the time in ms, but never one already used by this
    /// client (the server refuses a repeated nonce as a replay).
    fn next_nonce(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let previous = self
            .last_nonce
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(previous + 1)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let what = format!("{method} {path}");
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON serialises"));
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        for (name, value) in
            self.auth_headers(method.as_str(), path, bytes.as_deref().unwrap_or_default())
        {
            request = request.header(name, value);
        }
        if let Some(bytes) = bytes {
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }

        let response = request.send().await.map_err(|e| {
            Failure::Unavailable(format!("{what}: cannot reach {}: {e}", self.base))
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Unavailable(format!("{what}: the answer broke off: {e}")))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error_message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            if status.is_client_error() {
                return Err(Failure::Refused {
                    status: status.as_u16(),
                    request: what,
                    message,
                }
                .into());
            }
            return Err(Failure::Unavailable(format!("{what}: {status}: {message}")).into());
        }
        serde_json::from_str(&text).with_context(|| format!("{what}: answer is not JSON"))
    }
}

/// The bytes a signed request signs: `METHOD|path|nonce|sorted query|body`,
/// the query's pairs sorted and form-encoded again.
pub fn signed_message(
    method: &str,
    path: &str,
    nonce: &str,
    query: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    pairs.sort();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut message =
        format!("{}|{path}|{nonce}|{query}|", method.to_ascii_uppercase()).into_bytes();
    message.extend_from_slice(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_message_sorts_the_query() {
        let message = signed_message("get", "/v2/a", "7", Some("b=2&a=1 1"), b"");
        assert_eq!(message, b"GET|/v2/a|7|a=1+1&b=2|");
    }

    #[test]
    fn nonces_never_repeat() {
        let client = ApiClient::with_credential(
            "http://127.0.0.1:1",
            Credential::signing(&"11".repeat(32)).unwrap(),
        )
        .unwrap();
        let nonces: Vec<i64> = (0..100).map(|_| client.next_nonce()).collect();
        assert!(nonces.windows(2).all(|w| w[1] > w[0]));
    }

    #[test]
    fn server_urls_need_a_scheme() {
        let error = ApiClient::with_credential("127.0.0.1:8080", Credential::Bearer("t".into()));
        assert!(error.is_err());
    }
}
