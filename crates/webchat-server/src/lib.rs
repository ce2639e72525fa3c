//! The `webchat` server: configuration, wiring of the layers, start-up and shutdown.

pub mod config;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::{AppHandle, Application, StartError};
