//! The Hookgate wire protocol, shared by the server, the receiver library and
//! the CLI.
//!
//! Everything here is pure: no sockets, no files, no clocks. The crate holds
//!
//! - [`catalogue`]: the WaaS 2.0 event types a subscription may name;
//! - [`signing`]: the signature schemes (Cobo 2.0 Ed25519, Cobo 1.0 secp256k1
//!   ECDSA) over the exact body bytes and a millisecond timestamp;
//! - [`headers`]: the header names those signatures travel in;
//! - [`callback`]: how a callback endpoint's reply is judged (`ok`, `deny`,
//!   or a failed attempt);
//! - [`samples`]: realistic sample data for test triggers.

pub mod callback;
pub mod catalogue;
pub mod envelope;
pub mod headers;
pub mod model;
pub mod samples;
pub mod signing;
pub mod waas1;
