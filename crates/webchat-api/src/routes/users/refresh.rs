//! `POST /api/login/refresh/` and `POST /api/users/login/refresh/`

use crate::dto::TokenPair;
use crate::error::ApiError;
use crate::extract::{Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    post,
    path = "/api/login/refresh/",
    operation_id = "refresh",
    tag = "accounts",
    summary = "Trade a refresh token for a new pair",
    request_body = crate::openapi::RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the old refresh token is retired.", body = crate::dto::TokenPair),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "Invalid, expired or revoked refresh token (`token_invalid`, `token_expired`, `session_revoked`); a retired one revokes its session (`refresh_token_reused`).", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts from this address (`rate_limited`); see `Retry-After`.", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
)]
pub async fn refresh(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let token = f.required("refresh", |s| Ok(s.to_owned()));
    f.finish()?;
    let token = present(token)?;
    let accounts = state.accounts.clone();
    let pair = blocking(move || accounts.refresh(&token)).await?;
    Ok(HttpResponse::Ok().json(TokenPair { access: pair.access, refresh: pair.refresh }))
}

/// The same, at the path some clients of the original API use.
#[utoipa::path(
    post,
    path = "/api/users/login/refresh/",
    operation_id = "refresh_alias",
    tag = "accounts",
    summary = "Trade a refresh token for a new pair",
    request_body = crate::openapi::RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the old refresh token is retired.", body = crate::dto::TokenPair),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "Invalid, expired or revoked refresh token (`token_invalid`, `token_expired`, `session_revoked`); a retired one revokes its session (`refresh_token_reused`).", body = crate::error::ErrorBody),
        (status = 429, description = "Too many attempts from this address (`rate_limited`); see `Retry-After`.", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
)]
pub async fn refresh_alias(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    refresh(state, body).await
}
