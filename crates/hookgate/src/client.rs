//! A small client of the Hookgate HTTP API, shared by the commands.

use anyhow::{bail, Context};
use serde_json::Value;

/// Talks to one server with one bearer credential.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the server at `base` (such as `http://127.0.0.1:8080`).
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client configuration");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        }
    }

    /// The same server with another credential.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    /// GET `path`, JSON answer.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request, "GET", path).await
    }

    /// POST `body` to `path`, JSON answer.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request, "POST", path).await
    }

    /// PUT `body` to `path`, JSON answer.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self.http.put(format!("{}{path}", self.base)).json(body);
        self.send(request, "PUT", path).await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        path: &str,
    ) -> anyhow::Result<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("{method} {path}: cannot reach {}", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}"))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error_message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("{method} {path}: {status}: {message}");
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: answer is not JSON"))
    }
}
