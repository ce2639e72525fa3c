//! `GET /api/rooms/{room_name}/messages/`

use super::existing_room;
use crate::dto::{HistoryPageDto, MessageDto};
use crate::error::ApiError;
use crate::extract::{Authenticated, QueryParams, read};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{HistoryCursor, Seq};

#[utoipa::path(
    get,
    path = "/api/rooms/{room_name}/messages/",
    operation_id = "history",
    tag = "rooms",
    summary = "A page of a room's history",
    params(("room_name" = String, Path, description = "Room name (1–64 letters, digits, `_ . -`), any case."), ("before" = Option<i64>, Query, minimum = 0, description = "Messages with a smaller seq."), ("after" = Option<i64>, Query, minimum = 0, description = "Messages with a greater seq."), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Default 50.")),
    responses(
        (status = 200, description = "Messages, oldest first.", body = crate::dto::HistoryPageDto),
        (status = 400, description = "Bad query parameter (`validation_failed`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 404, description = "No such room (`not_found`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn history(
    state: web::Data<AppState>,
    _auth: Authenticated,
    path: web::Path<String>,
    params: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let name = existing_room(&path)?;
    let limit = params.int("limit", 1, 200, 50)?;
    let before = params.opt_int("before", 0, i64::MAX)?;
    let after = params.opt_int("after", 0, i64::MAX)?;
    let cursor = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field("before", "Give either before or after, not both."));
        }
        (Some(b), None) => HistoryCursor::Before(Seq(b)),
        (None, Some(a)) => HistoryCursor::After(Seq(a)),
        (None, None) => HistoryCursor::Latest,
    };
    let limit = u32::try_from(limit).unwrap_or(50);
    let rooms = state.rooms.clone();
    let page = read(&state, move || rooms.history(&name, cursor, limit)).await?;
    Ok(HttpResponse::Ok().json(HistoryPageDto {
        messages: page.messages.iter().map(MessageDto::from).collect(),
        has_more: page.has_more,
    }))
}
