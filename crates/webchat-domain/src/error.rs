//! The domain's error types.

use thiserror::Error;

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueField {
    Email,
    Username,
    /// `(room, sender, client_msg_id)`: an idempotent resend raced the first send.
    ClientMsgId,
    RoomName,
}

/// The error contract shared by every storage port.
///
/// `Conflict` is returned only by the methods whose docs say so; `Unavailable` means the
/// store could not be reached (the request may be retried); `Internal` is a bug or a broken
/// invariant and is never caused by client input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("unique constraint on {0:?} violated")]
    Conflict(UniqueField),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store failure: {0}")]
    Internal(String),
}

/// Every way a use case can fail. Each variant has a stable snake_case [`code`](Self::code)
/// that the adapters put on the wire.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// A value that parsed but breaks a rule needing the store (a wrong old password).
    #[error("{message}")]
    Validation { field: &'static str, message: String },
    #[error("Invalid email or password.")]
    InvalidCredentials,
    #[error("A user with that email already exists.")]
    EmailTaken,
    #[error("A user with that username already exists.")]
    UsernameTaken,
    #[error("Given token not valid for any token type.")]
    TokenInvalid,
    #[error("Token has expired.")]
    TokenExpired,
    #[error("This session has ended; log in again.")]
    SessionRevoked,
    #[error("This refresh token was already used; the session has been ended.")]
    RefreshTokenReused,
    #[error("You do not have permission to perform this action.")]
    Forbidden,
    #[error("You are not a member of this room.")]
    NotAMember,
    #[error("No such {0}.")]
    NotFound(&'static str),
    #[error("The database is unavailable; try again shortly.")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// The stable machine-readable code of this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "validation_failed",
            Self::InvalidCredentials => "invalid_credentials",
            Self::EmailTaken => "email_taken",
            Self::UsernameTaken => "username_taken",
            Self::TokenInvalid => "token_invalid",
            Self::TokenExpired => "token_expired",
            Self::SessionRevoked => "session_revoked",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::Forbidden => "forbidden",
            Self::NotAMember => "not_a_member",
            Self::NotFound(_) => "not_found",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(UniqueField::Email) => Self::EmailTaken,
            StoreError::Conflict(UniqueField::Username) => Self::UsernameTaken,
            StoreError::Conflict(other) => Self::Internal(format!("unexpected conflict on {other:?}")),
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::Internal(m) => Self::Internal(m),
        }
    }
}
