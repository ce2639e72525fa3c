//! `POST /api/users/me/password/`

use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::Password;

#[utoipa::path(
    post,
    path = "/api/users/me/password/",
    operation_id = "change_password",
    tag = "accounts",
    summary = "Change the password",
    request_body = crate::openapi::ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session of the user is revoked."),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn change_password(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let mut f = Fields::new(body.0);
    let old = f.required("old_password", |s| Ok(s.to_owned()));
    let new = f.required("new_password", Password::parse);
    f.finish()?;
    let (old, new) = (present(old)?, present(new)?);
    let accounts = state.accounts.clone();
    blocking(move || accounts.change_password(ctx, &old, &new)).await?;
    Ok(HttpResponse::NoContent().finish())
}
