//! Types and helpers used by more than one binary of the pipeline.
//!
//! - [`aws`]: one way to build AWS clients, honouring `AWS_ENDPOINT_URL` (emulators, VPC endpoints).
//! - [`telemetry`]: tracing as JSON lines in Lambda, text on a terminal.
//! - [`metrics`]: CloudWatch Embedded Metric Format.
//! - [`keys`]: the central bucket key layout (build and parse).
//! - [`payload`]: CloudWatch Logs subscription payloads (base64, gzip, JSON) with a size cap.
//! - [`cfn`]: the answer of a CloudFormation custom resource (the subscriber's backfill, the
//!   loader's OpenSearch setup).

pub mod aws;
pub mod cfn;
pub mod keys;
pub mod metrics;
pub mod payload;
pub mod telemetry;
