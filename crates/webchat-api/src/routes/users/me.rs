//! `GET /api/users/me/`

use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

pub async fn me(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let accounts = state.accounts.clone();
    let user = blocking(move || accounts.me(ctx)).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
