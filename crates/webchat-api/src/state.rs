//! What every handler shares.

use crate::presence::Presence;
use crate::ws::Hub;
use std::sync::Arc;
use webchat_domain::services::{AccountService, RoomService};

/// Whether the service can take traffic (the database answers).
pub trait Readiness: Send + Sync {
    fn is_ready(&self) -> bool;
}

/// The services and registries the handlers use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<AccountService>,
    pub rooms: Arc<RoomService>,
    pub presence: Arc<Presence>,
    pub readiness: Arc<dyn Readiness>,
    pub hub: Arc<Hub>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
