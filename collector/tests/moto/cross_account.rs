//! Writing into the central account through a writer role (STS AssumeRole).

use crate::*;
use collector::Settings;

const CENTRAL_ACCOUNT: &str = "999988887777";

#[tokio::test]
async fn writes_through_the_writer_role_into_the_central_bucket() {
    let central = tests::moto_config_for_account(CENTRAL_ACCOUNT, REGION).await;
    let central_s3 = shared::aws::s3_client(&central);
    let bucket = create_bucket(&central_s3).await;

    let member = tests::moto_config_for_account(MEMBER_ACCOUNT, REGION).await;
    let settings = Settings::from_lookup(|name| match name {
        "BUCKET" => Some(bucket.clone()),
        "EXPECTED_BUCKET_OWNER" => Some(CENTRAL_ACCOUNT.to_owned()),
        "WRITER_ROLE_ARN" => Some(format!("arn:aws:iam::{CENTRAL_ACCOUNT}:role/log-writer")),
        _ => None,
    })
    .expect("settings");
    let store = S3Store::from_settings(&member, &settings).await;
    invoke(store.clone(), SUBSCRIPTION_EVENT)
        .await
        .expect("stored through the writer role");
    invoke(store, SECURITY_HUB_EVENT)
        .await
        .expect("second write reuses the cached credentials");

    let keys = list_keys(&central_s3, &bucket).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("AWSLogs/111122223333/")));
}

/// moto lets any account write into any bucket, so the writes above alone do not show which
/// identity signed them: ask STS who the writer configuration's credentials belong to.
#[tokio::test]
async fn the_store_signs_as_the_writer_role() {
    let member = tests::moto_config_for_account(MEMBER_ACCOUNT, REGION).await;
    let role = format!("arn:aws:iam::{CENTRAL_ACCOUNT}:role/log-writer");
    let settings = Settings::from_lookup(|name| match name {
        "BUCKET" => Some("central-logs".to_owned()),
        "WRITER_ROLE_ARN" => Some(role.clone()),
        _ => None,
    })
    .expect("settings");
    for (settings, account, arn_part) in [
        (
            settings.clone(),
            CENTRAL_ACCOUNT,
            ":assumed-role/log-writer/",
        ),
        (
            Settings {
                writer_role_arn: None,
                ..settings
            },
            MEMBER_ACCOUNT,
            ":assumed-role/test-admin/",
        ),
    ] {
        // The configuration S3Store::from_settings builds its client from.
        let config = collector::store::writer_config(&member, &settings).await;
        let identity = aws_sdk_sts::Client::new(&config)
            .get_caller_identity()
            .send()
            .await
            .expect("GetCallerIdentity");
        assert_eq!(identity.account(), Some(account));
        let arn = identity.arn().unwrap_or_default();
        assert!(arn.contains(arn_part), "{arn}");
    }
}
