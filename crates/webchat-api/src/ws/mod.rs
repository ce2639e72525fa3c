//! WebSockets (SPEC §4): the hub, the frames, the per-socket session and writer, and the
//! endpoints.

pub mod frames;
pub mod hub;
pub mod outbox;
pub mod routes;
pub mod session;

pub use hub::{Hub, HubSettings};
