//! The loader's integration tests: one binary, one module per concern.

mod bad_input;
mod cli;
mod drills;
pub(crate) mod freshness;
mod geoip;
mod golden;
mod index;
mod lambda;
mod org;
mod proptests;
mod rules;
pub(crate) mod setup;
mod sink;
mod threat;
mod user_config;
mod verify;
