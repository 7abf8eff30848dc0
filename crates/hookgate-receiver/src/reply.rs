//! Answering a callback message: the exact reply the server takes as a
//! decision, which is status 200, `Content-Type: text/plain` and a body of
//! `ok` (approve) or `deny` (reject). Anything else, such as JSON or `OK`,
//! is a failed attempt that the server retries.

pub use hookgate_protocol::callback::Decision;

/// The reply to one callback message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackReply {
    decision: Decision,
}

impl CallbackReply {
    /// The reply's status code.
    pub const STATUS: u16 = 200;
    /// The reply's content type.
    pub const CONTENT_TYPE: &'static str = "text/plain";

    /// The reply for `decision`.
    pub fn new(decision: Decision) -> Self {
        Self { decision }
    }

    /// Approve: the transaction may go ahead.
    pub fn approve() -> Self {
        Self::new(Decision::Approve)
    }

    /// Deny: the transaction must not go ahead.
    pub fn deny() -> Self {
        Self::new(Decision::Deny)
    }

    /// The decision carried.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// The body: `ok` or `deny`.
    pub fn body(&self) -> &'static str {
        self.decision.reply_body()
    }

    /// The reply as an `http` response, for any framework built on `http`.
    pub fn to_http(&self) -> http::Response<String> {
        http::Response::builder()
            .status(Self::STATUS)
            .header(http::header::CONTENT_TYPE, Self::CONTENT_TYPE)
            .body(self.body().to_owned())
            .expect("static status and header are valid")
    }
}

impl From<Decision> for CallbackReply {
    fn from(decision: Decision) -> Self {
        Self::new(decision)
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for CallbackReply {
    fn into_response(self) -> axum::response::Response {
        self.to_http().map(axum::body::Body::from)
    }
}

#[cfg(test)]
mod tests {
    use hookgate_protocol::callback::judge_reply;

    use super::*;

    #[test]
    fn the_server_reads_each_reply_as_its_decision() {
        for decision in [Decision::Approve, Decision::Deny] {
            let response = CallbackReply::new(decision).to_http();
            let judged = judge_reply(response.status().as_u16(), response.body().as_bytes());
            assert_eq!(judged, Ok(decision));
            assert_eq!(response.headers()[http::header::CONTENT_TYPE], "text/plain");
        }
    }
}
