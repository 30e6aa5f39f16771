//! The Lambda's quarantine: entries under a prefix of a bucket (moto).

use loader::sink::{Origin, Quarantine, QuarantinedDocument, S3Quarantine};
use serde_json::Value;

#[tokio::test]
async fn entries_land_under_the_prefix_with_origin_and_error() {
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = tests::unique_name("quarantine");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");

    let q = S3Quarantine::new(s3.clone(), &bucket, "quarantine");
    let origin = Origin::new(format!("s3://{bucket}/AWSLogs/111122223333/x.json.gz"), 12);
    let doc = QuarantinedDocument {
        index: "log-aws-waf-2024-05",
        id: "abc123",
        source: br#"{"bytes":"many"}"#,
        origin: &origin,
        status: 400,
        error_type: "mapper_parsing_exception",
        reason: "failed to parse field [bytes] of type [long]",
    };
    let location = q.put(&doc).await.expect("quarantined");
    let key = "quarantine/log-aws-waf-2024-05/abc123.json";
    assert_eq!(location, format!("s3://{bucket}/{key}"));

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .expect("entry exists");
    assert_eq!(object.content_type(), Some("application/json"));
    let body = object.body.collect().await.expect("body").into_bytes();
    let entry: Value = serde_json::from_slice(&body).expect("entry JSON");
    assert_eq!(entry["object"], origin.object.as_ref());
    assert_eq!(entry["record"], 12);
    assert_eq!(entry["error"]["type"], "mapper_parsing_exception");
    assert_eq!(entry["document"]["bytes"], "many");

    // A bucket that does not exist: a clear error naming the object, not a panic.
    let missing = S3Quarantine::new(s3, format!("{bucket}-missing"), "q/");
    let err = missing.put(&doc).await.expect_err("no such bucket");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "s3://{bucket}-missing/q/log-aws-waf-2024-05/abc123.json"
        )),
        "{text}"
    );
}
