//! `POST /api/rooms/{room_name}/messages/`

use super::existing_room;
use crate::dto::MessageDto;
use crate::error::ApiError;
use crate::extract::{Authenticated, Fields, JsonObject, blocking, present};
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use webchat_domain::model::{ClientMsgId, MessageContent};

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
    let rooms = state.rooms.clone();
    let (message, created) = blocking(move || rooms.post(ctx, &name, content, client_msg_id)).await?;
    let dto = MessageDto::from(&message);
    Ok(if created { HttpResponse::Created().json(dto) } else { HttpResponse::Ok().json(dto) })
}
