use super::{SessionId, User, UserId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A login: lives until logout, password change, account deletion, refresh-token reuse or
/// the refresh token's expiry. Exactly one refresh token (`refresh_jti`) is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub refresh_jti: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// What a token says, before the domain checks it against the clock and the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: UserId,
    pub sid: SessionId,
    pub jti: Uuid,
    pub iat: DateTime<Utc>,
    pub exp: DateTime<Utc>,
    pub kind: TokenKind,
}

/// An access token's proven identity, the result of authenticating a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthContext {
    pub user_id: UserId,
    pub session_id: SessionId,
}

/// What a login or a refresh hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
    /// Present on login; a refresh does not repeat the user.
    pub user: Option<User>,
}
