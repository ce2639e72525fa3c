//! End-to-end tests: the real server on port 0, driven over HTTP as a client would, on
//! SQLite (a temporary file) and PostgreSQL (a fresh database per test).

#[macro_use]
mod helpers;

mod accounts;
mod bad_input;
mod cluster;
mod operations;
mod rooms;
mod server;
mod ws;
mod ws_client;
