//! Types and helpers used by more than one binary of the pipeline.
//!
//! - [`aws`]: one way to build AWS clients, honouring `AWS_ENDPOINT_URL` (emulators, VPC endpoints).
//! - [`telemetry`]: tracing as JSON lines in Lambda, text on a terminal.
//! - [`metrics`]: CloudWatch Embedded Metric Format.

pub mod aws;
pub mod metrics;
pub mod telemetry;
