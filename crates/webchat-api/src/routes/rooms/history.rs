//! `GET /api/rooms/{room_name}/messages/`

use super::existing_room;
use crate::dto::MessageDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, QueryParams, blocking};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use serde_json::json;
use webchat_domain::model::{HistoryCursor, Seq};

pub async fn history(
    state: web::Data<AppState>,
    Authenticated(_): Authenticated,
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
    let page = blocking(move || rooms.history(&name, cursor, limit)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "messages": page.messages.iter().map(MessageDto::from).collect::<Vec<_>>(),
        "has_more": page.has_more,
    })))
}
