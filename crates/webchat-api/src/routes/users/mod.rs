//! `/api/users/…` and `/api/login/refresh`: accounts and sessions.

pub mod change_password;
pub mod delete;
pub mod get;
pub mod list;
pub mod login;
pub mod logout;
pub mod me;
pub mod refresh;
pub mod register;
pub mod update;

use crate::error::ApiError;
use webchat_domain::model::UserId;

/// A user id from the path; a malformed one names no user (404).
fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).ok_or(ApiError::NotFound)
}
