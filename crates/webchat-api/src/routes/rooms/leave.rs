//! `POST /api/rooms/{room_name}/leave/`

use super::existing_room;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

pub async fn leave(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = existing_room(&path)?;
    let rooms = state.rooms.clone();
    blocking(move || rooms.leave(ctx, &name)).await?;
    Ok(HttpResponse::NoContent().finish())
}
