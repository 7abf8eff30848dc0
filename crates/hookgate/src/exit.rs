//! Exit codes scripts can rely on, and the failures that choose them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | a check failed (`verify`, `webhook test`), or an unexpected error |
//! | 2 | usage: bad flags, arguments, JSON or profile; nothing was sent |
//! | 3 | the server said no: 4xx (not found, invalid, unauthorized) |
//! | 4 | the server could not be reached, or answered 5xx |
//!
//! Commands return `anyhow::Error`; one that wraps a [`Failure`] exits with
//! that failure's code, any other with 1.

use std::fmt;
use std::process::ExitCode;

/// The exit-code table, as shown in `--help`.
pub const HELP: &str = "Exit codes:\n  \
0  done\n  \
1  a check failed (verify, webhook test) or an unexpected error\n  \
2  usage error: bad flags, arguments, JSON or profile (nothing was sent)\n  \
3  the server said no (4xx: not found, invalid, unauthorized)\n  \
4  the server could not be reached, or failed (5xx)";

/// A failure with a known exit code.
#[derive(Debug)]
pub enum Failure {
    /// The command line cannot be acted on.
    Usage(String),
    /// The server answered with a 4xx.
    Refused {
        /// The HTTP status.
        status: u16,
        /// What was asked, such as `GET /v2/webhooks/endpoints`.
        request: String,
        /// The server's `error_message`, or its body.
        message: String,
    },
    /// The server could not be reached, or answered with a 5xx.
    Unavailable(String),
    /// A check the command performs did not pass.
    Check(String),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Check(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Refused { .. } => 3,
            Failure::Unavailable(_) => 4,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) | Failure::Unavailable(message) | Failure::Check(message) => {
                f.write_str(message)
            }
            Failure::Refused {
                status,
                request,
                message,
            } => write!(f, "{request}: {status}: {message}"),
        }
    }
}

impl std::error::Error for Failure {}

/// A usage failure, as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure::Usage(message.into()).into()
}

/// The exit code for a command's error.
pub fn code_of(error: &anyhow::Error) -> ExitCode {
    let code = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Failure>())
        .map_or(1, Failure::code);
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn wrapped_failures_keep_their_code() {
        let refused: anyhow::Error = Failure::Refused {
            status: 404,
            request: "GET /v2/x".into(),
            message: "endpoint not found".into(),
        }
        .into();
        let wrapped = Err::<(), _>(refused)
            .context("showing an endpoint")
            .unwrap_err();
        assert_eq!(code_of(&wrapped), ExitCode::from(3));
        assert_eq!(code_of(&usage("bad")), ExitCode::from(2));
        assert_eq!(code_of(&anyhow::anyhow!("other")), ExitCode::from(1));
    }
}
