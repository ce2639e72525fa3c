//! `POST /api/rooms/{room_name}/read/`: move the read marker forward.

use super::existing_room;
use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::Seq;

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
