//! Implementations of the domain's [`MessageBus`](webchat_domain::ports::MessageBus).

mod local;

pub use local::LocalBus;
