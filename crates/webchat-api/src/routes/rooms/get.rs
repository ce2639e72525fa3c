//! `GET /api/rooms/{room_name}/`

use super::existing_room;
use crate::dto::RoomDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, read};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    get,
    path = "/api/rooms/{room_name}/",
    operation_id = "get_room",
    tag = "rooms",
    summary = "One room",
    params(("room_name" = String, Path, description = "Room name (1–64 letters, digits, `_ . -`), any case.")),
    responses(
        (status = 200, description = "The room.", body = crate::dto::RoomDto),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such room (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn get(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = existing_room(&path)?;
    let rooms = state.rooms.clone();
    let view = read(&state, move || rooms.get(ctx, &name)).await?;
    Ok(HttpResponse::Ok().json(RoomDto::from(&view)))
}
