//! `GET /api/users/user/{id}`

use super::user_id;
use crate::dto::UserDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

pub async fn get(
    state: web::Data<AppState>,
    Authenticated(_): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = user_id(&path)?;
    let accounts = state.accounts.clone();
    let user = blocking(move || accounts.get_user(id)).await?;
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
