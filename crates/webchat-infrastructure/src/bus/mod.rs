//! Implementations of the domain's [`MessageBus`](webchat_domain::ports::MessageBus).

mod local;
mod nats;
mod wire;

pub use local::LocalBus;
pub use nats::NatsBus;
