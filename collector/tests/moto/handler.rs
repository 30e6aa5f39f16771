//! The handler writes what the key layout and the issue specify, and nothing else.

use crate::*;
use aws_sdk_s3::types::ServerSideEncryption;
use base64::Engine;
use std::io::Read;

fn delivered_gzip(event: &str) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(event).expect("fixture is JSON");
    let data = value["awslogs"]["data"].as_str().expect("awslogs.data");
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("fixture is base64")
}

async fn setup() -> (Client, String) {
    let config = tests::moto_config(REGION).await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = create_bucket(&s3).await;
    (s3, bucket)
}

#[tokio::test]
async fn data_message_is_written_once_as_delivered() {
    let (s3, bucket) = setup().await;
    let store = S3Store::new(s3.clone(), &bucket, Some(KMS_KEY_ARN.to_owned()), None);
    let expected_key = "AWSLogs/111122223333/CloudWatchLogs/eu-west-1/%2Fvar/log/secure/\
                        2024/05/20/10/i-0a1b2c3d4e5f60718-\
                        38273462897203948723049823749823749827349827349827340000.json.gz";

    let outcome = invoke(store.clone(), SUBSCRIPTION_EVENT)
        .await
        .expect("stored");
    assert_eq!(
        outcome,
        Outcome::Stored {
            uri: format!("s3://{bucket}/{expected_key}"),
            log_events: 4,
            bytes: delivered_gzip(SUBSCRIPTION_EVENT).len(),
        }
    );
    assert_eq!(list_keys(&s3, &bucket).await, vec![expected_key.to_owned()]);

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(expected_key)
        .send()
        .await
        .expect("GetObject");
    assert_eq!(object.content_type(), Some("application/json"));
    assert_eq!(object.content_encoding(), Some("gzip"));
    assert_eq!(
        object.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(object.ssekms_key_id(), Some(KMS_KEY_ARN));
    let body = object.body.collect().await.expect("body").into_bytes();
    assert_eq!(body.as_ref(), delivered_gzip(SUBSCRIPTION_EVENT).as_slice());

    // The stored object is what the loader reads: it parses back to the payload and its key.
    let json = shared::payload::gunzip(&body, 1 << 20).expect("stored gzip");
    let payload = shared::payload::parse_payload(&json).expect("stored payload");
    let Ok(shared::keys::ObjectKey::CloudWatchLogs(key)) = shared::keys::parse(expected_key) else {
        panic!("key does not parse back")
    };
    assert!(key.log_group.matches(&payload.log_group));
    assert!(key.log_stream.matches(&payload.log_stream));

    // A retried invocation overwrites the same object: still one, same bytes.
    invoke(store, SUBSCRIPTION_EVENT).await.expect("retry");
    assert_eq!(list_keys(&s3, &bucket).await, vec![expected_key.to_owned()]);
}

#[tokio::test]
async fn control_message_writes_nothing() {
    let (s3, bucket) = setup().await;
    let store = S3Store::new(s3.clone(), &bucket, None, None);
    let outcome = invoke(store, CONTROL_EVENT).await.expect("acknowledged");
    assert_eq!(outcome, Outcome::ControlMessage);
    assert!(list_keys(&s3, &bucket).await.is_empty());
}

#[tokio::test]
async fn security_hub_event_lands_under_its_prefix() {
    let (s3, bucket) = setup().await;
    let store = S3Store::new(s3.clone(), &bucket, None, None);
    invoke(store, SECURITY_HUB_EVENT).await.expect("stored");
    let keys = list_keys(&s3, &bucket).await;
    assert_eq!(
        keys,
        vec![
            "AWSLogs/111122223333/SecurityHub/eu-west-1/2024/05/20/09/\
             5f7c3e1a-9b2d-4c6e-8a10-2b3c4d5e6f70.json.gz"
                .to_owned()
        ]
    );
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(&keys[0])
        .send()
        .await
        .expect("GetObject");
    assert_eq!(object.content_encoding(), Some("gzip"));
    let body = object.body.collect().await.expect("body").into_bytes();
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_ref())
        .read_to_string(&mut text)
        .expect("gzip body");
    assert_eq!(text, SECURITY_HUB_EVENT);
}

#[tokio::test]
async fn s3_errors_fail_the_invocation_and_name_the_object() {
    let (s3, _) = setup().await;
    let missing = tests::unique_name("no-such-bucket");
    let store = S3Store::new(s3, &missing, None, None);
    let error = invoke(store, SUBSCRIPTION_EVENT)
        .await
        .expect_err("no bucket");
    assert_eq!(error.kind(), "StoreError");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "s3://{missing}/AWSLogs/111122223333/CloudWatchLogs/"
        )),
        "{message}"
    );
    assert!(message.contains("NoSuchBucket"), "{message}");
}
