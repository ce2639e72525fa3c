//! `POST /api/room/{room_name}/`: join, creating the room if needed.

use crate::dto::RoomDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use webchat_domain::model::RoomName;

pub async fn join(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Here the name is the client's input for a room to create, so a bad one is a 400.
    let name = RoomName::parse(&path).map_err(|e| ApiError::field("room_name", e.0))?;
    let rooms = state.rooms.clone();
    let (view, created) = blocking(move || rooms.join(ctx, &name)).await?;
    let body = json!({"room": RoomDto::from(&view), "created": created});
    Ok(if created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}
