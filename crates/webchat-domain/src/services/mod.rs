//! The use cases of SPEC §3, one service per aggregate.

mod accounts;
mod live_sessions;
mod rooms;

pub use accounts::{AccountService, AuthSettings, NewAccount};
pub use rooms::RoomService;

pub type DomainResult<T> = Result<T, crate::DomainError>;
