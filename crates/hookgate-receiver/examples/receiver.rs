//! A complete receiver: one route for webhook events, one for callback
//! messages, both verified with the server's Cobo WaaS 2.0 public key.
//!
//! ```sh
//! HOOKGATE_PUBLIC_KEY=<64 hex chars> \
//!   cargo run -p hookgate-receiver --features axum --example receiver -- [127.0.0.1:8088]
//! ```
//!
//! The key may also be given as the first argument (then the address is the
//! second). Point an endpoint at `http://<addr>/webhook` and a callback
//! endpoint at `http://<addr>/callback`.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::routing::post;
use axum::Router;
use hookgate_receiver::axum::{Receiver, Signed};
use hookgate_receiver::model::{Transaction, WebhookEvent};
use hookgate_receiver::{CallbackReply, DedupKey, DedupStore, Mark, MemoryDedupStore, Verifier};

#[derive(Clone)]
struct AppState {
    receiver: Receiver,
    seen: Arc<MemoryDedupStore>,
}

impl FromRef<AppState> for Receiver {
    fn from_ref(state: &AppState) -> Receiver {
        state.receiver.clone()
    }
}

async fn webhook(State(state): State<AppState>, event: Signed<WebhookEvent>) -> &'static str {
    let event = event.body;
    match state.seen.mark(&DedupKey::for_event(&event)) {
        Ok(Mark::New) => println!("event {} {}", event.event_id, event.event_type),
        Ok(Mark::Duplicate) => println!("event {} again, skipped", event.event_id),
        Err(error) => eprintln!("dedup store: {error}"),
    }
    "ok"
}

/// Approves transactions started through the API and denies the rest: put
/// the real policy here.
async fn callback(message: Signed<Transaction>) -> CallbackReply {
    let transaction = message.body;
    let from_api = transaction.initiator_type.as_ref().map(|t| t.as_str()) == Some("API");
    let reply = if from_api {
        CallbackReply::approve()
    } else {
        CallbackReply::deny()
    };
    println!("callback {}: {}", transaction.transaction_id, reply.body());
    reply
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let key = match std::env::var("HOOKGATE_PUBLIC_KEY") {
        Ok(key) => key,
        Err(_) => args
            .next()
            .ok_or("give the public key in HOOKGATE_PUBLIC_KEY or as an argument")?,
    };
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8088".into());

    let state = AppState {
        receiver: Receiver::new(Verifier::cobo_v2(&key)?),
        seen: Arc::new(MemoryDedupStore::new()),
    };
    let app = Router::new()
        .route("/webhook", post(webhook))
        .route("/callback", post(callback))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
