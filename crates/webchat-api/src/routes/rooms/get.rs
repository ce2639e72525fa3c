//! `GET /api/rooms/{room_name}/`

use super::existing_room;
use crate::dto::RoomDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

pub async fn get(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = existing_room(&path)?;
    let rooms = state.rooms.clone();
    let view = blocking(move || rooms.get(ctx, &name)).await?;
    Ok(HttpResponse::Ok().json(RoomDto::from(&view)))
}
