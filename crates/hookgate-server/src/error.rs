//! The server's one error type.
//!
//! Internal failures (storage, I/O) carry their cause and are logged where
//! they surface; the API turns each variant into a stable `error_code` and a
//! message that says what to do next (see `api::error`).

use std::fmt;

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings could not be read or make no sense.
    #[error("settings: {0}")]
    Settings(String),
    /// The database refused or failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A file in the data directory could not be read or written.
    #[error("data directory: {0}")]
    DataDir(String),
    /// The request was understood but is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The credential is missing or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// The named thing does not exist for this organisation.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The server is stopping or overloaded.
    #[error("{0}")]
    Unavailable(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl Error {
    /// An [`Error::Invalid`] from anything printable.
    pub fn invalid(message: impl fmt::Display) -> Self {
        Error::Invalid(message.to_string())
    }
}
