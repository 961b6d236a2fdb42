//! The server's integration tests, one test binary for all of them (nextest
//! still runs every test in a process of its own): each module is one
//! concern's tests, and `fixture/` is their harness.
#![allow(clippy::unwrap_used)]

mod api;
mod delivery;
mod fixture;
mod read_lane;
mod routes;
mod sso_faults;
mod ui;
mod webhooks;
