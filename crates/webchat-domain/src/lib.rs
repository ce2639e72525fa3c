//! WebChat's domain: the rules of users, sessions, rooms and messages.
//!
//! This crate is deliberately free of I/O and frameworks (no diesel, actix, tokio or
//! serde) so other services can reuse it. Everything it needs from the outside world is a
//! port trait in [`ports`]; the infrastructure crate implements them and the server wires
//! them together. Values are parsed into newtypes at the edge ([`model`]) and trusted here.

pub mod error;
pub mod model;
pub mod ports;
pub mod services;

pub use error::{DomainError, StoreError, UniqueField};
