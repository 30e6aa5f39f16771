//! The one integration-test binary of the `tests` crate: one module per concern.

mod harness;
