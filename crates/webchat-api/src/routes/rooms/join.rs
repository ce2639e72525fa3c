//! `POST /api/room/{room_name}/`: join, creating the room if needed.

use crate::dto::{JoinResponse, RoomDto};
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::RoomName;

#[utoipa::path(
    post,
    path = "/api/room/{room_name}/",
    operation_id = "join_room",
    tag = "rooms",
    summary = "Join a room, creating it if needed",
    params(("room_name" = String, Path, description = "Room name (1–64 letters, digits, `_ . -`), any case.")),
    responses(
        (status = 201, description = "Created and joined.", body = crate::dto::JoinResponse),
        (status = 200, description = "Joined (or already a member).", body = crate::dto::JoinResponse),
        (status = 400, description = "Invalid room name (`validation_failed`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn join(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Here the name is the client's input for a room to create, so a bad one is a 400.
    let name = RoomName::parse(&path).map_err(|e| ApiError::field("room_name", e.0))?;
    let rooms = state.rooms.clone();
    let (view, created) = blocking(move || rooms.join(ctx, &name)).await?;
    let body = JoinResponse { room: RoomDto::from(&view), created };
    Ok(if created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}
