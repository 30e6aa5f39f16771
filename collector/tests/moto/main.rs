//! The collector against the local AWS emulator (moto), started by `scripts/test`: the handler is
//! called in-process (moto cannot run Lambda code) and writes to real S3 API calls.

mod cross_account;
mod handler;
mod headers;
mod redrive;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use collector::{Collector, Invocation, Outcome, S3Store};
use shared::metrics::Metrics;

/// The member account the collector runs in, in these tests.
pub const MEMBER_ACCOUNT: &str = "111122223333";
pub const REGION: &str = "eu-west-1";
pub const FUNCTION_ARN: &str =
    "arn:aws:lambda:eu-west-1:111122223333:function:org-security-logs-collector";
pub const KMS_KEY_ARN: &str =
    "arn:aws:kms:eu-west-1:999988887777:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

pub const SUBSCRIPTION_EVENT: &str = include_str!("../../fixtures/subscription-event.json");
pub const CONTROL_EVENT: &str = include_str!("../../fixtures/control-message-event.json");
pub const SECURITY_HUB_EVENT: &str = include_str!("../../fixtures/securityhub-finding-event.json");

/// Creates a fresh bucket with `s3` and returns its name.
pub async fn create_bucket(s3: &Client) -> String {
    let bucket = tests::unique_name("collector");
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("CreateBucket in moto");
    bucket
}

/// Every key in `bucket`.
pub async fn list_keys(s3: &Client, bucket: &str) -> Vec<String> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("ListObjectsV2 in moto");
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// Runs one invocation of a collector writing through `store`.
pub async fn invoke(store: S3Store, event: &str) -> Result<Outcome, collector::CollectError> {
    let collector = Collector::new(store, shared::payload::DEFAULT_MAX_DECOMPRESSED);
    let mut metrics = Metrics::new("Test");
    collector
        .handle(
            event,
            Invocation {
                function_arn: FUNCTION_ARN,
                request_id: "moto-test",
            },
            &mut metrics,
        )
        .await
}
