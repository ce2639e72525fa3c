//! `POST /api/rooms/{room_name}/messages/`

use super::existing_room;
use crate::dto::MessageDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking, post_and_wait, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{ClientMsgId, MessageContent};

#[utoipa::path(
    post,
    path = "/api/rooms/{room_name}/messages/",
    operation_id = "post_message",
    tag = "rooms",
    summary = "Send a message",
    request_body = crate::openapi::PostMessageRequest,
    params(("room_name" = String, Path, description = "Room name (1–64 letters, digits, `_ . -`), any case.")),
    responses(
        (status = 201, description = "Stored.", body = crate::dto::MessageDto),
        (status = 200, description = "This `client_msg_id` was used before: the original message; nothing stored.", body = crate::dto::MessageDto),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 403, description = "Not a member (`not_a_member`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such room (`not_found`).", body = crate::error::ErrorBody),
        (status = 429, description = "Over the send rate (`rate_limited`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn post_message(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let name = existing_room(&path)?;
    let mut f = Fields::new(body.0);
    let content = f.required("content", MessageContent::parse);
    let client_msg_id = f.optional("client_msg_id", ClientMsgId::parse);
    f.finish()?;
    let content = present(content)?;
    // The same budget as sends over WebSockets (SPEC §4): HTTP is no way around it.
    if !state.hub.allow_send(ctx.user_id) {
        return Err(ApiError::RateLimited { retry_after: 1 });
    }
    let rooms = state.rooms.clone();
    let room = blocking(move || rooms.find_room(&name)).await?;
    let (message, created) = post_and_wait(&state.rooms, ctx, room.id, content, client_msg_id).await?;
    if created {
        crate::metrics::message_stored();
    }
    let dto = MessageDto::from(&message);
    Ok(if created { HttpResponse::Created().json(dto) } else { HttpResponse::Ok().json(dto) })
}
