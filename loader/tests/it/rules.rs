//! Detection rules in a load: alerts reach OpenSearch with the documents, exactly once however
//! often an object is loaded, and rules of the user's own load next to the bundled pack.

use crate::sink::count_at;
use std::path::Path;
use std::process::{Command, Output};

const KEY: &str = "AWSLogs/o-abc123defg/111122223333/CloudTrail/eu-west-1/2026/12/01/111122223333_CloudTrail_eu-west-1_20261201T1000Z_rules.json";

/// An object with one event the bundled pack alerts on (StopLogging), one a user rule alerts
/// on (DeleteBucket), and one nothing alerts on.
fn write_object(dir: &Path) {
    let path = dir.join(KEY);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
    let records = r#"{"Records":[
        {"eventVersion":"1.09","eventTime":"2026-12-01T10:00:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","eventID":"r1","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","userName":"mallory"}},
        {"eventVersion":"1.09","eventTime":"2026-12-01T10:00:01Z","eventSource":"s3.amazonaws.com","eventName":"DeleteBucket","eventID":"r2","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","userName":"mallory"}},
        {"eventVersion":"1.09","eventTime":"2026-12-01T10:00:02Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"r3","awsRegion":"eu-west-1","recipientAccountId":"111122223333","userIdentity":{"type":"IAMUser","userName":"mallory"}}]}"#;
    std::fs::write(&path, records).expect("object");
}

fn user_rules(dir: &Path) {
    let rules = dir.join("my-rules");
    std::fs::create_dir_all(&rules).expect("rules folder");
    std::fs::write(
        rules.join("bucket_deleted.yml"),
        "title: Bucket deleted\nid: 0b1c2d3e-0000-4000-8000-000000000001\nlevel: medium\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  selection:\n    eventSource: s3.amazonaws.com\n    eventName: DeleteBucket\n  condition: selection\n",
    )
    .expect("rule");
    std::fs::write(
        rules.join("broken.yml"),
        "title: Broken\nid: x\ndetection: [\n",
    )
    .expect("rule");
}

fn load(dir: &Path, url: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loader"))
        .arg("load")
        .arg(dir.join("objects"))
        .args(["--opensearch", url, "--report-dir"])
        .arg(dir.join("reports"))
        .args(extra)
        .env_remove("OPENSEARCH_AUTH")
        .env_remove("OPENSEARCH_SECRET_ARN")
        .env_remove("ORGANIZATION_ID")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("RUST_LOG", "warn")
        .output()
        .expect("loader runs")
}

#[tokio::test]
async fn alerts_load_with_the_documents_once_and_user_rules_join_the_pack() {
    let cluster = tests::OwnOpenSearch::start();
    let dir = tempfile::tempdir().expect("tempdir");
    write_object(&dir.path().join("objects"));
    user_rules(dir.path());
    let rules = dir.path().join("my-rules").display().to_string();
    let url = cluster.url.clone();
    let root = dir.path().to_path_buf();
    for round in 1..=2 {
        let (root, url, rules) = (root.clone(), url.clone(), rules.clone());
        let out = tokio::task::spawn_blocking(move || load(&root, &url, &["--rules", &rules]))
            .await
            .expect("ran");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {stderr}");
        assert!(
            stderr.contains("cloudtrail: alerts 2"),
            "round {round}: {stderr}"
        );
        // The broken rule is named, and the others still run.
        assert!(stderr.contains("broken.yml"), "round {round}: {stderr}");
        assert_eq!(count_at(&cluster.url, "alert-*").await, 2, "round {round}");
        assert_eq!(count_at(&cluster.url, "log-aws-cloudtrail-*").await, 3);
    }
    // Without rules, the same object alerts on nothing.
    let out = tokio::task::spawn_blocking(move || load(&root, &url, &["--no-rules"]))
        .await
        .expect("ran");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("alerts"));
}
