//! The engine's integration tests, one test binary for all of them (nextest
//! still runs every test in a process of its own): each module is one
//! concern's tests.
#![allow(clippy::unwrap_used)]

mod access;
mod deploy_local;
mod gitops;
mod prepared_stages;
mod stage_boundaries;
