//! A capture server for the command-line tests: records every request with
//! its full URI (path and query), headers and raw body, and answers as its
//! mode says: accept everything, verify Cobo 2.0 signatures with a public
//! key, or hang on the first request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the capture server answers.
#[derive(Clone)]
pub enum Mode {
    /// 200 to everything: a handler that checks nothing.
    AcceptAll,
    /// 200 when the Cobo 2.0 signature verifies with this key, else 401.
    Verify(String),
    /// The first request waits this long before its 200; the others answer
    /// at once.
    HangFirst(Duration),
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Path and query, as sent.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The server.
pub struct Capture {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
    task: JoinHandle<()>,
}

impl Capture {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        let log = requests.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (log, mode, seen) = (log.clone(), mode.clone(), seen.clone());
            async move {
                let nth = seen.fetch_add(1, Ordering::SeqCst);
                log.lock().unwrap().push(Captured {
                    uri: uri.to_string(),
                    headers: headers.clone(),
                    body: body.clone(),
                });
                match mode {
                    Mode::AcceptAll => StatusCode::OK,
                    Mode::Verify(key) => {
                        let verifier = hookgate_receiver::Verifier::cobo_v2(&key).unwrap();
                        match verifier.verify(&headers, &body) {
                            Ok(_) => StatusCode::OK,
                            Err(_) => StatusCode::UNAUTHORIZED,
                        }
                    }
                    Mode::HangFirst(wait) => {
                        if nth == 0 {
                            tokio::time::sleep(wait).await;
                        }
                        StatusCode::OK
                    }
                }
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            requests,
            task,
        }
    }

    /// The URL of `path_and_query` here.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}
