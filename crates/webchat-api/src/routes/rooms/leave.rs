//! `POST /api/rooms/{room_name}/leave/`

use super::existing_room;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};

#[utoipa::path(
    post,
    path = "/api/rooms/{room_name}/leave/",
    operation_id = "leave_room",
    tag = "rooms",
    summary = "Leave a room",
    params(("room_name" = String, Path, description = "Room name (1–64 letters, digits, `_ . -`), any case.")),
    responses(
        (status = 204, description = "Left (or was not a member)."),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such room (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
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
