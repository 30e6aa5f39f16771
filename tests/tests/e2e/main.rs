//! The one integration-test binary of the `tests` crate: one module per concern.

mod cfn;
mod deploy_script;
mod hardening;
mod harness;
mod log_event;
mod operations;
mod stacksets;
mod templates;
