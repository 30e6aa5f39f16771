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

/// The SNS topic of the alerts and an SQS queue subscribed to it, in moto.
async fn topic_with_queue(aws: &aws_config::SdkConfig) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(aws);
    let sqs = aws_sdk_sqs::Client::new(aws);
    let topic = sns
        .create_topic()
        .name(tests::unique_name("alerts"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("topic arn");
    let queue = sqs
        .create_queue()
        .queue_name(tests::unique_name("alert-reader"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("subscription");
    (topic, queue)
}

/// Every message in the queue now (SNS envelopes), deleted as read.
async fn drain(aws: &aws_config::SdkConfig, queue: &str) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("SNS envelope"));
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

#[tokio::test]
async fn alerts_at_the_level_reach_the_topic_once_and_rules_come_from_s3() {
    let aws = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&aws);
    let bucket = tests::unique_name("rules");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let dir = tempfile::tempdir().expect("tempdir");
    user_rules(dir.path());
    for name in ["bucket_deleted.yml", "broken.yml"] {
        let text = std::fs::read(dir.path().join("my-rules").join(name)).expect("rule");
        s3.put_object()
            .bucket(&bucket)
            .key(format!("sigma/aws/{name}"))
            .body(text.into())
            .send()
            .await
            .expect("upload rule");
    }
    let (topic, queue) = topic_with_queue(&aws).await;
    let cluster = tests::OwnOpenSearch::start();
    write_object(&dir.path().join("objects"));

    let rules = format!("s3://{bucket}/sigma/");
    for (round, published) in [(1, 2), (2, 0)] {
        let (root, url, rules, topic) = (
            dir.path().to_path_buf(),
            cluster.url.clone(),
            rules.clone(),
            topic.clone(),
        );
        let out = tokio::task::spawn_blocking(move || {
            let args = [
                "--rules",
                rules.as_str(),
                "--alert-topic",
                topic.as_str(),
                "--alert-min-level",
                "medium",
            ];
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_loader"));
            cmd.arg("load")
                .arg(root.join("objects"))
                .args(["--opensearch", &url, "--report-dir"])
                .arg(root.join("reports"))
                .args(args)
                .env("AWS_ENDPOINT_URL", tests::moto_endpoint())
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("OPENSEARCH_AUTH")
                .env_remove("ORGANIZATION_ID")
                .env_remove("AWS_LAMBDA_RUNTIME_API")
                .env("RUST_LOG", "warn");
            cmd.output().expect("loader runs")
        })
        .await
        .expect("ran");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {stderr}");
        assert!(
            stderr.contains("cloudtrail: alerts 2"),
            "round {round}: {stderr}"
        );
        // The broken rule in the bucket is named by its S3 location.
        assert!(
            stderr.contains(&format!("s3://{bucket}/sigma/aws/broken.yml")),
            "round {round}: {stderr}"
        );
        // A replay creates no alert document, so it publishes nothing again.
        assert!(
            stderr.contains(&format!("alert topic: published {published}, failed 0")),
            "round {round}: {stderr}"
        );
    }
    let mut messages = drain(&aws, &queue).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    messages.sort_by_key(|m| m["Subject"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        messages[0]["Subject"],
        "[high] CloudTrail logging stopped, deleted or changed (111122223333)"
    );
    assert_eq!(
        messages[1]["Subject"],
        "[medium] Bucket deleted (111122223333)"
    );
    let body: serde_json::Value =
        serde_json::from_str(messages[1]["Message"].as_str().expect("message")).expect("json");
    assert_eq!(
        body["alert"]["rule"]["id"],
        "0b1c2d3e-0000-4000-8000-000000000001"
    );
    assert_eq!(body["alert"]["alert"]["source"]["id"], "r2");
    assert!(
        body["summary"]
            .as_str()
            .is_some_and(|s| s.contains("DeleteBucket by mallory")),
        "{body}"
    );
    assert_eq!(messages[1]["MessageAttributes"]["level"]["Value"], "medium");
}

/// The burst monitor's own search, run by the cluster over loaded documents, finds the
/// principal that launched 20 instances in ten minutes and counts only its successful calls:
/// the monitors' queries and aggregations are ones OpenSearch runs, on the fields as loaded.
#[tokio::test]
async fn a_monitor_search_finds_the_burst_in_loaded_documents() {
    use loader::rules::monitors::{MonitorOptions, monitor_artifacts};
    let cluster = tests::OwnOpenSearch::start();
    let url = cluster.url.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    // Templates first, as in a deployment: the fields get their types.
    let setup = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_loader"))
                .args(["setup", "--opensearch", &url])
                .args([
                    "--skip",
                    "retention",
                    "--skip",
                    "dashboards",
                    "--skip",
                    "monitors",
                ])
                .env_remove("OPENSEARCH_AUTH")
                .env("RUST_LOG", "warn")
                .output()
                .expect("setup runs")
        })
        .await
        .expect("ran")
    };
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stdout)
    );

    let event = |n: usize, user: &str, minute: usize, second: usize, failed: bool| {
        let error = if failed {
            r#","errorCode":"Client.UnauthorizedOperation""#
        } else {
            ""
        };
        format!(
            r#"{{"eventVersion":"1.09","eventTime":"2026-12-01T10:{minute:02}:{second:02}Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventID":"burst-{n}","awsRegion":"eu-west-1","recipientAccountId":"111122223333","sourceIPAddress":"203.0.113.10","userIdentity":{{"type":"IAMUser","userName":"{user}","arn":"arn:aws:iam::111122223333:user/{user}"}}{error}}}"#
        )
    };
    let mut records = Vec::new();
    for i in 0..20 {
        records.push(event(i, "alice", i * 25 / 60, i * 25 % 60, false));
    }
    for i in 20..25 {
        records.push(event(i, "bob", 3, i, false));
    }
    for i in 25..28 {
        records.push(event(i, "alice", 4, i, true));
    }
    let path = root.join("objects").join(KEY);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
    std::fs::write(&path, format!(r#"{{"Records":[{}]}}"#, records.join(","))).expect("object");
    let out = {
        let (root, url) = (root.clone(), url.clone());
        tokio::task::spawn_blocking(move || load(&root, &url, &[]))
            .await
            .expect("ran")
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count_at(&url, "log-aws-cloudtrail-*").await, 28);

    let config = loader::config::Config::builtin().expect("config");
    let rules = loader::rules::RuleSet::with_bundled(&config, &[], &[]);
    let (monitors, _) = monitor_artifacts(&rules, &config, &MonitorOptions::default());
    let burst = monitors
        .iter()
        .find(|m| m.name.contains("ebf2aff0"))
        .expect("burst monitor");
    let search = &burst.body["inputs"][0]["search"];
    // The run at 10:10, as Alerting would fill in its period end.
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:10:00Z")
        .expect("time")
        .timestamp_millis();
    let query = search["query"]
        .to_string()
        .replace("{{period_end}}", &at.to_string());
    let indices = search["indices"][0].as_str().expect("index pattern");
    let answer: serde_json::Value = search_at(&url, indices, &query).await;
    let buckets = answer["aggregations"]["groups"]["buckets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let counts: Vec<(String, u64)> = buckets
        .iter()
        .map(|b| {
            (
                b["key"]["userIdentity.arn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                b["doc_count"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("arn:aws:iam::111122223333:user/alice".to_owned(), 20),
            ("arn:aws:iam::111122223333:user/bob".to_owned(), 5)
        ],
        "{answer}"
    );
    assert_eq!(
        burst.body["triggers"][0]["bucket_level_trigger"]["condition"]["script"]["source"],
        "params.count >= 20"
    );
}

/// `POST <url>/<index>/_search` with a JSON body.
async fn search_at(url: &str, index: &str, body: &str) -> serde_json::Value {
    let http = loader::sink::OpenSearchTransport::new(&loader::sink::SinkConfig::new(url), None)
        .expect("client");
    let reply = http
        .request(
            opensearch::http::Method::Post,
            &format!("/{index}/_search"),
            &[],
            Some(body.as_bytes().to_vec()),
        )
        .await
        .expect("search");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    serde_json::from_slice(&reply.body).expect("json")
}

fn detect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loader"))
        .arg("detect")
        .args(args)
        .env_remove("ORGANIZATION_ID")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("RUST_LOG", "warn")
        .output()
        .expect("loader runs")
}

/// `loader detect` over objects and over the NDJSON of a load: the same alerts, single events
/// and thresholds alike, in time order, with counts per rule; a table when asked.
#[test]
fn detect_prints_event_and_threshold_alerts_from_objects_and_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let event = |n: usize, name: &str, minute: usize, second: usize| {
        format!(
            r#"{{"eventVersion":"1.09","eventTime":"2026-12-01T10:{minute:02}:{second:02}Z","eventSource":"{}","eventName":"{name}","eventID":"d-{n}","awsRegion":"eu-west-1","recipientAccountId":"111122223333","sourceIPAddress":"203.0.113.10","userIdentity":{{"type":"IAMUser","userName":"mallory","arn":"arn:aws:iam::111122223333:user/mallory"}}}}"#,
            if name == "RunInstances" {
                "ec2.amazonaws.com"
            } else {
                "cloudtrail.amazonaws.com"
            }
        )
    };
    // Out of time order on purpose: the correlations see them sorted.
    let mut records: Vec<String> = (0..20)
        .rev()
        .map(|i| event(i, "RunInstances", i / 3, (i * 20) % 60))
        .collect();
    records.push(event(99, "StopLogging", 0, 30));
    let path = dir.path().join("objects").join(KEY);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
    std::fs::write(&path, format!(r#"{{"Records":[{}]}}"#, records.join(","))).expect("object");

    let objects = dir.path().join("objects").display().to_string();
    let out = detect(&[&objects, "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let rules: Vec<&str> = alerts
        .iter()
        .map(|a| a["rule"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        rules,
        [
            "CloudTrail logging stopped, deleted or changed",
            "Burst of EC2 instance launches by one principal"
        ],
        "{alerts:#?}"
    );
    let burst = &alerts[1];
    assert_eq!(burst["@timestamp"], "2026-12-01T10:06:20.000Z");
    assert_eq!(
        burst["userIdentity"]["arn"],
        "arn:aws:iam::111122223333:user/mallory"
    );
    assert_eq!(burst["alert"]["correlation"]["value"], 20.0);
    assert!(
        stderr.contains("alerts: 2 (1 from thresholds and sequences over 20 counted documents)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ebf2aff0-8299-4a77-a40f-ae021a460ded"),
        "{stderr}"
    );

    // The same from the documents of a load.
    let docs = dir.path().join("docs.ndjson");
    let load = Command::new(env!("CARGO_BIN_EXE_loader"))
        .arg("load")
        .arg(&objects)
        .arg("--out")
        .arg(&docs)
        .args(["--no-rules", "--report-dir"])
        .arg(dir.path().join("reports"))
        .env_remove("ORGANIZATION_ID")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("load runs");
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let again = detect(&[&docs.display().to_string(), "--format", "json"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let from_docs: Vec<serde_json::Value> = String::from_utf8_lossy(&again.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let ids = |list: &[serde_json::Value]| -> Vec<String> {
        list.iter()
            .map(|a| format!("{} {}", a["rule"]["id"], a["@timestamp"]))
            .collect()
    };
    assert_eq!(ids(&from_docs), ids(&alerts));
    assert_eq!(from_docs[0]["alert"]["source"]["id"], "d-99");

    let table = detect(&[&objects, "--format", "table"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("TIME"), "{text}");
    assert!(
        text.contains("userIdentity.arn=arn:aws:iam::111122223333:user/mallory (20)"),
        "{text}"
    );
    assert!(text.contains("111122223333/eu-west-1"), "{text}");
}
