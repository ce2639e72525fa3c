//! `DELETE /api/users/user/{id}` (self only)

use super::user_id;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

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
