//! What every handler shares.

use crate::presence::Presence;
use crate::ws::Hub;
use std::sync::Arc;
use webchat_domain::services::{AccountService, RoomService};

/// The database pool as `/metrics` reports it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolSnapshot {
    pub max: u32,
    pub open: u32,
    pub in_use: u32,
    pub waiting: usize,
}

/// What the operations endpoints ask of the store.
pub trait Readiness: Send + Sync {
    /// Whether the service can take traffic (the database answers). May block.
    fn is_ready(&self) -> bool;
    /// The connection pool now. Must not block.
    fn pool(&self) -> PoolSnapshot;
}

/// The services and registries the handlers use; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<AccountService>,
    pub rooms: Arc<RoomService>,
    pub presence: Arc<Presence>,
    pub readiness: Arc<dyn Readiness>,
    pub hub: Arc<Hub>,
    /// Register, login and refresh attempts per client IP (`None`: no limit).
    pub auth_limiter: Option<Arc<crate::rate_limit::AuthLimiter>>,
    /// Reads run on the worker thread rather than the blocking pool: true when the store
    /// is in-process (embedded SQLite), whose reads never wait on a network (see
    /// [`crate::extract::read`]).
    pub inline_reads: bool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
