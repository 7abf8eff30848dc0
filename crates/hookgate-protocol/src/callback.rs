//! How a callback endpoint's reply is judged.
//!
//! A reply decides only when its status is 200 or 201 and its body, with
//! ASCII whitespace trimmed from both ends, is exactly `ok` or `deny`.
//! Anything else (another status, `OK`, `"ok"`, `{"result":"ok"}`, an empty
//! body) is a failed attempt that will be retried. The rule is strict on
//! purpose: an approval is money leaving, so only an unambiguous answer counts.

use std::fmt;

/// What the customer decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The body was `ok`: the transaction may go ahead.
    Approve,
    /// The body was `deny`: the transaction must not go ahead.
    Deny,
}

impl Decision {
    /// The exact reply body a receiver sends for this decision.
    pub fn reply_body(self) -> &'static str {
        match self {
            Decision::Approve => "ok",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reply_body())
    }
}

/// Why a reply did not decide anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndecidedReply {
    /// The status was not 200 or 201.
    Status(u16),
    /// The status was fine but the body was neither `ok` nor `deny`.
    Body,
}

impl fmt::Display for UndecidedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UndecidedReply::Status(code) => write!(f, "status {code}"),
            UndecidedReply::Body => f.write_str("reply body is neither ok nor deny"),
        }
    }
}

/// Judges a callback reply by its status and body.
pub fn judge_reply(status: u16, body: &[u8]) -> Result<Decision, UndecidedReply> {
    if status != 200 && status != 201 {
        return Err(UndecidedReply::Status(status));
    }

    match body.trim_ascii() {
        b"ok" => Ok(Decision::Approve),
        b"deny" => Ok(Decision::Deny),
        _ => Err(UndecidedReply::Body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_answers_decide() {
        assert_eq!(judge_reply(200, b"ok"), Ok(Decision::Approve));
        assert_eq!(judge_reply(201, b"deny"), Ok(Decision::Deny));
        assert_eq!(judge_reply(200, b" \r\nok\n\t"), Ok(Decision::Approve));
    }

    #[test]
    fn near_misses_are_failed_attempts() {
        for body in [
            &b"OK"[..],
            b"\"ok\"",
            b"{\"result\":\"ok\"}",
            b"",
            b"okay",
            b"o k",
        ] {
            assert_eq!(
                judge_reply(200, body),
                Err(UndecidedReply::Body),
                "{body:?}"
            );
        }
    }

    #[test]
    fn other_statuses_never_decide() {
        for status in [202, 204, 301, 400, 500] {
            assert_eq!(
                judge_reply(status, b"ok"),
                Err(UndecidedReply::Status(status))
            );
        }
    }

    #[test]
    fn non_ascii_whitespace_is_not_trimmed() {
        assert_eq!(
            judge_reply(200, "\u{a0}ok".as_bytes()),
            Err(UndecidedReply::Body)
        );
    }
}
