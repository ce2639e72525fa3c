//! `GET /api/rooms/`

use crate::dto::{RoomDto, json_ok, room_json_size};
use crate::error::ApiError;
use crate::extract::{Authenticated, QueryParams, listing};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{Page, RoomListQuery};

#[utoipa::path(
    get,
    path = "/api/rooms/",
    operation_id = "list_rooms",
    tag = "rooms",
    summary = "Rooms, most recently active first",
    params(("joined" = Option<bool>, Query, description = "Only rooms the caller joined."), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Default 100."), ("offset" = Option<u64>, Query, description = "Default 0."), ("messages" = Option<u32>, Query, minimum = 0, maximum = 200, description = "Last messages per room, default 50.")),
    responses(
        (status = 200, description = "Rooms.", body = Vec<crate::dto::RoomDto>),
        (status = 400, description = "Bad query parameter (`validation_failed`).", body = crate::error::ErrorBody),
        (status = 401, description = "No, malformed, expired or revoked token (`not_authenticated`, `token_invalid`, `token_expired`, `session_revoked`).", body = crate::error::ErrorBody),
        (status = 503, description = "The database is unavailable (`unavailable`).", body = crate::error::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    state: web::Data<AppState>,
    Authenticated(ctx): Authenticated,
    params: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let joined = params.bool("joined", false)?;
    let limit = params.int("limit", 1, 200, 100)?;
    let offset = params.int("offset", 0, i64::MAX, 0)?;
    let messages = params.int("messages", 0, 200, 50)?;
    let page = Page::new(u32::try_from(limit).unwrap_or(100), u64::try_from(offset).unwrap_or(0))
        .map_err(|e| ApiError::field("limit", e.0))?;
    let query = RoomListQuery { joined, page, messages: u32::try_from(messages).unwrap_or(50) };
    let views = listing(&state.rooms, ctx, query).await?;
    let size = views.iter().map(room_json_size).sum::<usize>() + 2;
    json_ok(&views.iter().map(RoomDto::from).collect::<Vec<_>>(), size)
}
