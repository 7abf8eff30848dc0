//! API errors: one status, one stable code and one message each.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

/// Stable error codes. Clients may match on them; never renumber.
pub mod code {
    /// The request body or a parameter is not valid.
    pub const INVALID: i32 = 2003;
    /// The credential is missing or wrong.
    pub const UNAUTHORIZED: i32 = 2022;
    /// The body is larger than the server accepts.
    pub const TOO_LARGE: i32 = 2004;
    /// The thing asked for does not exist.
    pub const NOT_FOUND: i32 = 12002;
    /// The request conflicts with the current state.
    pub const CONFLICT: i32 = 2009;
    /// The server cannot serve this now.
    pub const UNAVAILABLE: i32 = 5003;
    /// Something failed inside the server.
    pub const INTERNAL: i32 = 5000;
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: i32,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: i32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is not valid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::INVALID, message)
    }

    /// 401: no or wrong credential.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message)
    }

    /// 405: the path exists, but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::INVALID,
            "this path does not take this method; see the API reference for the ones it takes",
        )
    }

    /// 404 for `what`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code::NOT_FOUND,
            format!("{what} not found"),
        )
    }

    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the user is told (never an internal detail).
    pub fn message(&self) -> &str {
        self.message.split('\u{0}').next().unwrap_or_default()
    }

    pub(super) fn from_json_rejection(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::TOO_LARGE,
                    "the request body is larger than the server accepts (max_body_bytes)",
                )
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::INVALID,
                "send the body as JSON with Content-Type: application/json",
            ),
            other => Self::invalid(format!("invalid JSON body: {}", other.body_text())),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(message) => Self::invalid(message),
            Error::Unauthorized(message) => Self::unauthorized(message),
            Error::NotFound(what) => Self::not_found(what),
            Error::Conflict(message) => Self::new(StatusCode::CONFLICT, code::CONFLICT, message),
            Error::Unavailable(message) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, message)
            }
            internal @ (Error::Storage(_) | Error::DataDir(_) | Error::Settings(_)) => {
                let mut answer = Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::INTERNAL,
                    "internal error; the server log has the details under this error_id",
                );
                answer.message = format!("{}\u{0}{internal}", answer.message);
                answer
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error_id = uuid::Uuid::new_v4().to_string();
        let (message, detail) = match self.message.split_once('\u{0}') {
            Some((shown, hidden)) => (shown.to_owned(), Some(hidden.to_owned())),
            None => (self.message, None),
        };

        if self.status.is_server_error() {
            tracing::error!(%error_id, code = self.code, detail = detail.as_deref(), "{message}");
        } else {
            // One line per refused request, so that the id a user quotes is
            // in the log at the default level.
            tracing::info!(%error_id, code = self.code, status = self.status.as_u16(), "{message}");
        }

        let body = json!({"error_code": self.code, "error_message": message, "error_id": error_id});
        (self.status, axum::Json(body)).into_response()
    }
}
