//! `GET /api/users/me/`

use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, read};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    get,
    path = "/api/users/me/",
    operation_id = "me",
    tag = "accounts",
    summary = "The caller's account",
    responses(
        (status = 200, description = "The caller.", body = crate::dto::UserDto),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn me(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let accounts = state.accounts.clone();
    let user = read(&state, move || accounts.me(ctx)).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
