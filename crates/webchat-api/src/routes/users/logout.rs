//! `POST /api/users/logout/`

use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, OptionalJsonObject, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    post,
    path = "/api/users/logout/",
    operation_id = "logout",
    tag = "accounts",
    summary = "End the session",
    request_body(content = Option<crate::openapi::LogoutRequest>, content_type = "application/json", description = "Optional: a refresh token of the caller's, whose session ends too."),
    responses(
        (status = 204, description = "Logged out; the session's sockets close with 4401."),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn logout(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: OptionalJsonObject,
) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let refresh = f.optional("refresh", |s| Ok(s.to_owned()));
    f.finish()?;
    let accounts = state.accounts.clone();
    blocking(move || accounts.logout(ctx, refresh.as_deref())).await?;
    Ok(HttpResponse::NoContent().finish())
}
