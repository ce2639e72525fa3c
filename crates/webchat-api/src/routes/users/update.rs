//! `PUT`/`PATCH /api/users/user/update` (the caller) and `/api/users/user/{id}` (self only).

use super::user_id;
use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{AuthContext, Email, UserId, UserPatch, Username};

/// `PUT` replaces both fields; `PATCH` changes those given.
async fn update(
    state: web::Data<AppState>,
    ctx: AuthContext,
    target: UserId,
    body: JsonObject,
    full: bool,
) -> Result<HttpResponse, ApiError> {
    // Someone else's account is refused before its body is even read: a 403 says more
    // than a 400 about a request that could never succeed.
    if target != ctx.user_id {
        let accounts = state.accounts.clone();
        blocking(move || accounts.owned(ctx, target)).await?;
    }
    let mut f = Fields::new(body.0);
    let patch = if full {
        UserPatch {
            email: f.required("email", Email::parse),
            username: f.required("username", Username::parse),
        }
    } else {
        UserPatch {
            email: f.optional("email", Email::parse),
            username: f.optional("username", Username::parse),
        }
    };
    f.finish()?;
    let accounts = state.accounts.clone();
    let user = blocking(move || accounts.update_user(ctx, target, &patch)).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}

#[utoipa::path(
    put,
    path = "/api/users/user/update",
    operation_id = "update_me",
    tag = "accounts",
    summary = "Replace the caller's email and username",
    request_body = crate::openapi::UserUpdate,
    responses(
        (status = 200, description = "The updated account.", body = crate::dto::UserDto),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 409, description = "Email or username taken (`email_taken`, `username_taken`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn update_me_put(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, ctx.user_id, body, true).await
}

#[utoipa::path(
    patch,
    path = "/api/users/user/update",
    operation_id = "patch_me",
    tag = "accounts",
    summary = "Change the caller's email or username",
    request_body = crate::openapi::UserPatchRequest,
    responses(
        (status = 200, description = "The updated account.", body = crate::dto::UserDto),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 409, description = "Email or username taken (`email_taken`, `username_taken`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn update_me_patch(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, ctx.user_id, body, false).await
}

#[utoipa::path(
    put,
    path = "/api/users/user/{id}",
    operation_id = "update_user",
    tag = "accounts",
    summary = "Replace one's own email and username",
    request_body = crate::openapi::UserUpdate,
    params(("id" = String, Path, description = "The user's id (a UUID).")),
    responses(
        (status = 200, description = "The updated account.", body = crate::dto::UserDto),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 409, description = "Email or username taken (`email_taken`, `username_taken`).", body = crate::error::ErrorBody),
        (status = 403, description = "Another user's account (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such user (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn update_put(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, user_id(&path)?, body, true).await
}

#[utoipa::path(
    patch,
    path = "/api/users/user/{id}",
    operation_id = "patch_user",
    tag = "accounts",
    summary = "Change one's own email or username",
    request_body = crate::openapi::UserPatchRequest,
    params(("id" = String, Path, description = "The user's id (a UUID).")),
    responses(
        (status = 200, description = "The updated account.", body = crate::dto::UserDto),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 409, description = "Email or username taken (`email_taken`, `username_taken`).", body = crate::error::ErrorBody),
        (status = 403, description = "Another user's account (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such user (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn update_patch(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    update(state, ctx, user_id(&path)?, body, false).await
}
