//! Header names used on the wire.
//!
//! Cobo documents `Biz-Timestamp` and `Biz-Resp-Signature`; receivers built
//! from one of its official samples read the underscore spellings, so the
//! server sends both by default and receivers accept either.

/// Send time of an attempt, Unix milliseconds as a decimal string.
pub const BIZ_TIMESTAMP: &str = "Biz-Timestamp";
/// Hex signature over `body|timestamp`.
pub const BIZ_RESP_SIGNATURE: &str = "Biz-Resp-Signature";
/// Underscore spelling of [`BIZ_TIMESTAMP`].
pub const BIZ_TIMESTAMP_UNDERSCORE: &str = "BIZ_TIMESTAMP";
/// Underscore spelling of [`BIZ_RESP_SIGNATURE`].
pub const BIZ_RESP_SIGNATURE_UNDERSCORE: &str = "BIZ_RESP_SIGNATURE";
