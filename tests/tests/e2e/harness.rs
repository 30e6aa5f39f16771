//! The harness itself: the emulator is reachable and accounts are selected by assuming a role.

use tests::{moto_config_for_account, unique_name};

#[tokio::test]
async fn assumed_role_acts_in_its_own_account() {
    let config = moto_config_for_account("111122223333", "eu-west-1").await;
    let sts = aws_sdk_sts::Client::new(&config);
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    assert_eq!(identity.account(), Some("111122223333"));

    let s3 = shared::aws::s3_client(&config);
    let bucket = unique_name("harness");
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("CreateBucket through the path-style client");
}
