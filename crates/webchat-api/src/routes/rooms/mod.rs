//! `/api/rooms/…` and `/api/room/{name}/`: rooms, history and sending.

pub mod get;
pub mod history;
pub mod join;
pub mod leave;
pub mod list;
pub mod post_message;
pub mod read;

use crate::error::ApiError;
use webchat_domain::model::RoomName;

/// A room name from the path of a read; a name that cannot exist names no room (404).
fn existing_room(raw: &str) -> Result<RoomName, ApiError> {
    RoomName::parse(raw).map_err(|_| ApiError::NotFound)
}
