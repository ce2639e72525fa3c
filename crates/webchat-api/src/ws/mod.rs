//! WebSockets (SPEC §4): the hub, the frames, the per-socket session and the endpoints.

pub mod frames;
pub mod hub;
pub mod routes;
pub mod session;

pub use hub::{Hub, HubSettings};
