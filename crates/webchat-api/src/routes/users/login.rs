//! `POST /api/users/login/`

use crate::dto::{LoginResponse, UserDto};
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::InvalidValue;

/// Any non-empty string: a malformed email simply matches no account, so the answer is the
/// same `invalid_credentials` as for a wrong password.
fn non_empty(raw: &str) -> Result<String, InvalidValue> {
    if raw.is_empty() { Err(InvalidValue("This field may not be blank.".into())) } else { Ok(raw.to_owned()) }
}

#[utoipa::path(
    post,
    path = "/api/users/login/",
    operation_id = "login",
    tag = "accounts",
    summary = "Log in: start a session",
    request_body = crate::openapi::LoginRequest,
    responses(
        (status = 200, description = "A token pair and the user.", body = crate::dto::LoginResponse),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "Wrong email or password (`invalid_credentials`), the same answer for both.", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts from this address (`rate_limited`); see `Retry-After`.", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
)]
pub async fn login(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let email = f.required("email", non_empty);
    let password = f.required("password", non_empty);
    f.finish()?;
    let (email, password) = (present(email)?, present(password)?);
    let accounts = state.accounts.clone();
    let pair = blocking(move || accounts.login(&email, &password)).await?;
    let user = pair.user.as_ref().ok_or_else(|| ApiError::Internal("login without a user".into()))?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        access: pair.access.clone(),
        refresh: pair.refresh.clone(),
        user: UserDto::from(user),
    }))
}
