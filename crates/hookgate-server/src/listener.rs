//! Serving the API with the limits a listener open to clients needs.
//!
//! axum's own `serve` accepts every connection and waits for a request's
//! headers for as long as the client likes, so a client that trickles them
//! (or opens connections and says nothing) holds sockets until the process
//! runs out. Here, a request's headers must arrive within [`HEADER_TIMEOUT`]
//! (which also closes idle keep-alive connections), and at most
//! [`MAX_CONNECTIONS`] are open at once; further clients wait in the
//! kernel's backlog. WebSocket upgrades (the listeners' stream) pass through.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Longest wait for a request's headers, idle keep-alive included.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4096;

/// Longest wait at shutdown for requests in progress.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop` completes, then lets the
/// requests in progress finish (up to [`DRAIN_LIMIT`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);

    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);

        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }

    drop(listener);
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress after {DRAIN_LIMIT:?}; stopping anyway");
    }
    Ok(())
}
