//! The subscriber keeps every CloudWatch Logs log group of an account and region subscribed to
//! the collector, and reports coverage across an AWS Organization.
//!
//! - [`settings`]: our filter, the loop guard and the include/exclude lists.
//! - [`account`]: the account-level mode, one subscription filter policy for the account.
//! - [`reconcile`]: the decisions (pure) and the walk over all log groups, behind [`reconcile::LogsApi`].
//! - [`events`]: the Lambda events told apart (CloudTrail via EventBridge, schedule, custom resource).
//! - [`handler`]: one invocation.
//! - [`cfn`]: the custom resource response.
//! - [`aws`]: [`reconcile::LogsApi`] over the SDK with rate limits, backoff and request counts.
//! - [`throttle`]: token bucket and backoff.
//! - [`coverage`]: the organization report.

pub mod account;
pub mod aws;
pub mod coverage;
pub mod events;
pub mod handler;
pub mod reconcile;
pub mod settings;
pub mod throttle;
