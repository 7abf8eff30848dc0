//! How the answers of a message's callback endpoints become one decision.
//!
//! An API key may have several callback endpoints (a risk engine and a
//! compliance service, say). The rule is "all must approve", and it fails
//! closed:
//!
//! - any `deny` decides `Denied` at once, whatever the others say or will say;
//! - any endpoint that runs out of attempts without answering decides
//!   `Failed`: silence never approves;
//! - only when every endpoint answered `ok` is the message `Approved`;
//! - otherwise the message stays `Retrying`.
//!
//! The first decision recorded is final. The store applies this rule in the
//! same transaction that records an answer, and changes a message only while
//! it is `Retrying`, so two answers racing cannot record two decisions.

use crate::store::message_status;

/// Where one callback endpoint stands on one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointAnswer {
    /// No answer yet; attempts go on.
    Waiting,
    /// Answered `ok`.
    Approved,
    /// Answered `deny`.
    Denied,
    /// Ran out of attempts without a decision.
    Exhausted,
}

/// The message's status given every endpoint's answer.
pub fn decide(answers: &[EndpointAnswer]) -> &'static str {
    if answers.contains(&EndpointAnswer::Denied) {
        message_status::DENIED
    } else if answers.contains(&EndpointAnswer::Exhausted) {
        message_status::FAILED
    } else if !answers.is_empty() && answers.iter().all(|a| *a == EndpointAnswer::Approved) {
        message_status::APPROVED
    } else {
        message_status::RETRYING
    }
}

/// The `result` shown for a status: `ok`, `deny`, or none.
pub fn result_of(status: &str) -> Option<&'static str> {
    match status {
        message_status::APPROVED => Some("ok"),
        message_status::DENIED => Some("deny"),
        _ => None,
    }
}

/// Whether the producer may let the transaction go ahead.
pub fn may_proceed(status: &str) -> bool {
    status == message_status::APPROVED
}

#[cfg(test)]
mod tests {
    use super::EndpointAnswer::*;
    use super::*;

    #[test]
    fn one_endpoint() {
        assert_eq!(decide(&[Waiting]), "Retrying");
        assert_eq!(decide(&[Approved]), "Approved");
        assert_eq!(decide(&[Denied]), "Denied");
        assert_eq!(decide(&[Exhausted]), "Failed");
    }

    #[test]
    fn two_endpoints_every_combination() {
        let all = [Waiting, Approved, Denied, Exhausted];
        for a in all {
            for b in all {
                let status = decide(&[a, b]);
                let expected = if a == Denied || b == Denied {
                    "Denied"
                } else if a == Exhausted || b == Exhausted {
                    "Failed"
                } else if a == Approved && b == Approved {
                    "Approved"
                } else {
                    "Retrying"
                };
                assert_eq!(status, expected, "{a:?} + {b:?}");
            }
        }
    }

    #[test]
    fn no_endpoint_never_approves_by_itself() {
        assert_eq!(decide(&[]), "Retrying");
    }

    #[test]
    fn only_approval_lets_money_leave() {
        assert!(may_proceed("Approved"));
        for status in ["Denied", "Failed", "Retrying", "approved", ""] {
            assert!(!may_proceed(status), "{status}");
        }
    }
}
