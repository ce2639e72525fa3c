//! `DELETE /api/users/user/{id}` (self only)

use super::user_id;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    delete,
    path = "/api/users/user/{id}",
    operation_id = "delete_user",
    tag = "accounts",
    summary = "Delete one's own account",
    params(("id" = String, Path, description = "The user's id (a UUID).")),
    responses(
        (status = 204, description = "Deleted: sessions revoked, sockets closed, messages kept with `sender: null`."),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 403, description = "Another user's account (`forbidden`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such user (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn delete(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = user_id(&path)?;
    let accounts = state.accounts.clone();
    blocking(move || accounts.delete_user(ctx, target)).await?;
    Ok(HttpResponse::NoContent().finish())
}
