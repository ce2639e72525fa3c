//! `POST /api/rooms/{room_name}/read/`: move the read marker forward.

use super::existing_room;
use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::Seq;

#[utoipa::path(
    post,
    path = "/api/rooms/{room_name}/read/",
    operation_id = "mark_read",
    tag = "rooms",
    summary = "Move the read marker forward",
    request_body = crate::openapi::ReadRequest,
    params(("room_name" = String, Path, description = "Room name (1–64 letters, digits, `_ . -`), any case.")),
    responses(
        (status = 204, description = "Moved (never backwards)."),
        (status = 400, description = "Malformed JSON or invalid fields (`invalid_json`, `validation_failed`).", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`).", body = crate::error::ErrorBody),
        (status = 415, description = "Body not `application/json` (`unsupported_media_type`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 403, description = "Not a member (`not_a_member`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such room (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn read(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let name = existing_room(&path)?;
    let mut f = Fields::new(body.0);
    let seq = f.required_int("seq");
    f.finish()?;
    let seq = Seq(present(seq)?);
    let rooms = state.rooms.clone();
    blocking(move || rooms.mark_read(ctx, &name, seq)).await?;
    Ok(HttpResponse::NoContent().finish())
}
