//! `GET /api/users/user/{id}`

use super::user_id;
use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, read};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    get,
    path = "/api/users/user/{id}",
    operation_id = "get_user",
    tag = "accounts",
    summary = "One user",
    params(("id" = String, Path, description = "The user's id (a UUID).")),
    responses(
        (status = 200, description = "The user.", body = crate::dto::UserDto),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such user, or a malformed id (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn get(
    state: web::Data<AppState>,
    _auth: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let accounts = state.accounts.clone();
    let user = read(&state, move || accounts.get_user(id)).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
