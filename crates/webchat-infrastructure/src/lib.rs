//! WebChat's ports implemented: one diesel store for PostgreSQL and SQLite ([`db`]),
//! bcrypt and JWT ([`auth`]), and the system clock and id generator ([`system`]).

pub mod auth;
pub mod bus;
pub mod db;
pub mod system;

pub use auth::{BcryptHasher, JwtCodec};
pub use bus::{LocalBus, NatsBus};
pub use db::{DatabaseTarget, Db, DbError, DbOptions, PoolStats};
pub use system::{RandomIds, SystemClock};
