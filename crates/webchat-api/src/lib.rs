//! WebChat's HTTP adapter (actix-web): REST handlers, DTOs, extractors and the error model
//! of SPEC §2. Depends on the domain only; the server crate hands it the wired services.

pub mod dto;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod presence;
pub mod rate_limit;
pub mod routes;
pub mod state;
pub mod ws;

pub use error::ApiError;
pub use presence::Presence;
pub use routes::configure;
pub use state::{AppState, PoolSnapshot, Readiness};

/// Request bodies above this size are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
