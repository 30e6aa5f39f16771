//! The loader's integration tests: one binary, one module per concern.

mod cli;
mod golden;
mod lambda;
mod proptests;
mod sink;
