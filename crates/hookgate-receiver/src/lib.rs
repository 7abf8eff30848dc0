//! Receive Hookgate and Cobo WaaS webhooks and callbacks in a Rust service.
//!
//! The steps of receiving, each in its own module:
//!
//! 1. [`verify`]: check the signature over the **raw body bytes** (Cobo 2.0
//!    Ed25519, Cobo 1.0 secp256k1, or Standard Webhooks), with an optional
//!    [`freshness`] window on the timestamp; headers come from any
//!    [`HeaderSource`].
//! 2. [`body`]: parse the verified bytes into the typed [`model`]s.
//! 3. [`dedup`]: book each delivery and each transaction outcome once.
//! 4. [`reply`]: answer a callback message with `ok` or `deny`.
//!
//! With the `axum` feature, `axum::Signed<T>` does steps 1 and 2 as an
//! extractor; with `sqlite`, `dedup::SqliteDedupStore` keeps marks on disk.
//!
//! # Quick start
//!
//! ```no_run
//! use hookgate_receiver::{body, CallbackReply, Verifier};
//!
//! # fn handle(headers: &http::HeaderMap, raw: &[u8]) -> hookgate_receiver::Result<()> {
//! let verifier = Verifier::cobo_v2("<64 hex chars of the server's public key>")?;
//! verifier.verify(headers, raw)?; // 401 on error: never trust an unverified body
//! let event = body::parse_event(raw)?;
//! println!("{} {}", event.event_type, event.event_id);
//!
//! // For a callback message instead: parse a Transaction and decide.
//! let reply = CallbackReply::approve(); // 200, text/plain, "ok"
//! # let _ = reply; Ok(()) }
//! ```

#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod body;
pub mod dedup;
pub mod error;
pub mod freshness;
pub mod headers;
pub mod reply;
pub mod verify;

/// The typed wire models, re-exported from the protocol crate.
pub use hookgate_protocol::model;

pub use dedup::{DedupKey, DedupStore, Mark, MemoryDedupStore, TransactionState};
pub use error::{ReceiverError, Result};
pub use headers::HeaderSource;
pub use reply::{CallbackReply, Decision};
pub use verify::{Scheme, Verified, Verifier};
