//! The outbound HTTP client of deliveries.
//!
//! Built for untrusted URLs: redirects are never followed, every address is
//! checked against the [`NetworkPolicy`] after resolution (IP literals
//! before dialling), no proxy from the environment is used, and at most
//! [`RESPONSE_BODY_LIMIT`] bytes of a response body are ever read into
//! memory. Connections are pooled and reused across attempts.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;

use super::netpolicy::NetworkPolicy;

/// Most bytes of a response body kept (the rest is not read).
pub const RESPONSE_BODY_LIMIT: usize = 64 * 1024;

/// What came back from an endpoint.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Up to [`RESPONSE_BODY_LIMIT`] bytes of the body.
    pub body: Vec<u8>,
    /// Whether the body was longer than what was read.
    pub truncated: bool,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
}

/// Why no reply came.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// No full reply within the attempt timeout.
    #[error("timeout")]
    Timeout,
    /// The address is not one deliveries may dial.
    #[error("blocked by network policy: {0}")]
    Blocked(String),
    /// The connection could not be made.
    #[error("connect: {0}")]
    Connect(String),
    /// The connection was reset or closed mid-exchange.
    #[error("reset")]
    Reset,
    /// The TLS handshake failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The URL cannot be used.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// Anything else the HTTP stack reported.
    #[error("{0}")]
    Other(String),
}

/// Sends attempts.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    timeout: Duration,
}

impl Sender {
    /// A client that applies `policy`, gives each attempt `timeout`, and
    /// keeps up to `idle_per_host` connections open to one host between
    /// attempts: as many as may be in flight, or a busy endpoint would see
    /// connections closed and dialled again all the time.
    pub fn new(policy: NetworkPolicy, timeout: Duration, idle_per_host: usize) -> Self {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
            }))
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(idle_per_host)
            .tcp_nodelay(true)
            .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        Self {
            client,
            policy,
            timeout,
        }
    }

    /// POSTs `body` with `headers` to `url`.
    pub async fn post(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Reply, SendError> {
        let parsed = url::Url::parse(url).map_err(|e| SendError::InvalidUrl(e.to_string()))?;
        if let Some(ip) = literal_ip(&parsed) {
            if !self.policy.permits(ip) {
                return Err(SendError::Blocked(ip.to_string()));
            }
        }

        let exchange = async {
            let mut response = self
                .client
                .post(parsed)
                .headers(headers)
                .body(body)
                .send()
                .await
                .map_err(|e| classify(&e))?;

            let status = response.status().as_u16();
            let header = |name: http::HeaderName| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let location = header(http::header::LOCATION);
            let retry_after = header(http::header::RETRY_AFTER);

            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
                let room = RESPONSE_BODY_LIMIT - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Reply {
                status,
                body,
                truncated,
                location,
                retry_after,
            })
        };

        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(SendError::Timeout))
    }
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Resolves names, then drops every address the policy refuses.
struct PolicyResolver {
    policy: Arc<NetworkPolicy>,
}

#[derive(Debug, thiserror::Error)]
#[error("every address of {0} is blocked by network policy")]
struct BlockedName(String);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| policy.permits(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedName(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Names the cause of a failed exchange from the error chain.
fn classify(error: &reqwest::Error) -> SendError {
    let mut chain = String::new();
    let mut source: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedName>() {
            return SendError::Blocked(blocked.0.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    return SendError::Reset
                }
                ConnectionRefused => return SendError::Connect("connection refused".into()),
                _ => {}
            }
        }
        chain.push_str(&e.to_string());
        chain.push_str(": ");
        source = e.source();
    }

    let lower = chain.to_ascii_lowercase();
    if error.is_timeout() {
        SendError::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        SendError::Tls(first_line(&chain))
    } else if lower.contains("connection closed") || lower.contains("incomplete message") {
        SendError::Reset
    } else if error.is_connect() {
        SendError::Connect(first_line(&chain))
    } else {
        SendError::Other(first_line(&chain))
    }
}

fn first_line(chain: &str) -> String {
    chain.trim_end_matches(": ").chars().take(300).collect()
}
