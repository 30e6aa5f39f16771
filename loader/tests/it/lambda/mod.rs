//! The Lambda handler against moto and osmem: an object put into a bucket whose notification
//! goes to an SQS queue; the message received from that queue, given to the handler in-process
//! (moto cannot run Lambda code), loads the object into OpenSearch.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::Message;
use flate2::Compression;
use flate2::write::GzEncoder;
use loader::config::Config;
use loader::deliver::{ChunkLimits, S3Source};
use loader::lambda::{Handler, HandlerSettings};
use loader::pipeline::Pipeline;
use loader::sink::{BulkSink, S3Quarantine, SinkConfig};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

mod binary;

const REGION: &str = "us-east-1";

struct Env {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue_url: String,
    /// The CloudTrail index prefix of this test, so tests sharing osmem never count each other.
    index: String,
}

/// A bucket whose ObjectCreated notifications go to a fresh queue.
async fn setup(what: &str) -> Env {
    let config = tests::moto_config(REGION).await;
    let s3 = shared::aws::s3_client(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let tests::NotifiedBucket {
        bucket, queue_url, ..
    } = tests::notified_bucket(&s3, &sqs, &format!("lambda-{what}")).await;
    Env {
        s3,
        sqs,
        bucket,
        queue_url,
        index: tests::unique_name(&format!("log-test-lambda-{what}")).to_ascii_lowercase(),
    }
}

impl Env {
    /// The handler as `main` builds it, with the CloudTrail index renamed for this test.
    async fn handler(&self) -> Handler<S3Source, BulkSink> {
        self.handler_at(&tests::opensearch_url(), Duration::from_secs(30))
            .await
    }

    /// The same, sending to `url` and retrying for `retry` at most.
    async fn handler_at(&self, url: &str, retry: Duration) -> Handler<S3Source, BulkSink> {
        let user = format!("[cloudtrail]\nindex_name = {}\n", self.index);
        let config = Config::with_user_file("user.ini", &user).expect("user file");
        let mut sink_config = SinkConfig::new(url);
        sink_config.retry.max_elapsed = retry;
        let quarantine = Arc::new(S3Quarantine::new(
            self.s3.clone(),
            &self.bucket,
            "quarantine/",
        ));
        let sink = BulkSink::connect(&sink_config, quarantine)
            .await
            .expect("sink");
        let settings = HandlerSettings {
            concurrency: 2,
            // Small chunks, so an object goes to the sink in several writes.
            chunk: ChunkLimits {
                max_docs: 7,
                max_bytes: 1 << 20,
            },
        };
        Handler::new(
            Arc::new(Pipeline::new(config)),
            S3Source::new(self.s3.clone()),
            sink,
            settings,
        )
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }

    /// Receives messages until `n` of them name objects.
    async fn receive(&self, n: usize) -> Vec<Message> {
        tests::receive_notifications(&self.sqs, &self.queue_url, n).await
    }

    async fn count(&self) -> u64 {
        crate::sink::count(&format!("{}-*", self.index)).await
    }
}

/// The Lambda event SQS would hand the function for `messages`.
fn sqs_event(messages: &[Message]) -> SqsEvent {
    let records = tests::sqs_event_records(messages, REGION);
    serde_json::from_value(json!({ "Records": records })).expect("SQS event")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// A CloudTrail object of `n` events with ids `<prefix>-<i>`.
fn cloudtrail(prefix: &str, n: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "eventVersion": "1.09",
                "eventID": format!("{prefix}-{i}"),
                "eventTime": "2024-05-01T10:00:00Z",
                "eventName": "GetObject",
                "eventSource": "s3.amazonaws.com",
                "awsRegion": REGION,
                "sourceIPAddress": "198.51.100.7",
                "recipientAccountId": "111122223333",
            })
        })
        .collect();
    gzip(&serde_json::to_vec(&json!({ "Records": records })).expect("json"))
}

/// A CloudTrail key; the name carries a space and a `+`, which S3 notifications encode.
fn key(n: usize) -> String {
    format!(
        "AWSLogs/o-abcdef1234/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T1000Z_obj {n}+x.json.gz"
    )
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn an_object_notified_through_sqs_is_loaded_once_however_often_delivered() {
    let env = setup("one").await;
    env.put(&key(1), cloudtrail("one", 25)).await;
    let messages = env.receive(1).await;
    let handler = env.handler().await;

    let response = handler
        .handle_sqs(sqs_event(&messages))
        .await
        .expect("handled");
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    assert_eq!(env.count().await, 25);

    // SQS delivers at least once: the same batch again leaves the same count.
    let again = handler
        .handle_sqs(sqs_event(&messages))
        .await
        .expect("handled");
    assert!(failed_ids(&again).is_empty());
    assert_eq!(env.count().await, 25);
}

#[tokio::test]
async fn a_batch_with_one_broken_object_reports_exactly_its_message() {
    let env = setup("three").await;
    // Cut inside the first compressed block: no record can be read from it.
    let mut broken = cloudtrail("broken", 50);
    broken.truncate(30);
    env.put(&key(1), cloudtrail("first", 11)).await;
    env.put(&key(2), broken).await;
    env.put(&key(3), cloudtrail("third", 13)).await;
    let messages = env.receive(3).await;
    let broken_message = messages
        .iter()
        .find(|m| {
            let body = m.body().unwrap_or_default();
            body.contains("obj+2%2Bx") || body.contains("obj%202%2Bx")
        })
        .and_then(|m| m.message_id().map(str::to_owned))
        .unwrap_or_else(|| panic!("no notification for the broken object: {messages:?}"));

    let handler = env.handler().await;
    let response = handler
        .handle_sqs(sqs_event(&messages))
        .await
        .expect("handled");
    assert_eq!(failed_ids(&response), [broken_message]);
    assert_eq!(env.count().await, 24);

    // The answer Lambda sends back to SQS.
    let answer = handler
        .handle(serde_json::to_value(sqs_event(&messages)).expect("json"))
        .await
        .expect("handled");
    assert_eq!(
        answer["batchItemFailures"],
        json!([{ "itemIdentifier": failed_ids(&response)[0] }])
    );
}

#[tokio::test]
async fn an_object_deleted_before_loading_fails_its_message() {
    let env = setup("gone").await;
    env.put(&key(9), cloudtrail("gone", 2)).await;
    let messages = env.receive(1).await;
    env.s3
        .delete_object()
        .bucket(&env.bucket)
        .key(key(9))
        .send()
        .await
        .expect("DeleteObject");
    let handler = env.handler().await;
    let response = handler
        .handle_sqs(sqs_event(&messages))
        .await
        .expect("handled");
    let object_message: Vec<String> = messages
        .iter()
        .filter(|m| !m.body().unwrap_or_default().contains("s3:TestEvent"))
        .filter_map(|m| m.message_id().map(str::to_owned))
        .collect();
    assert_eq!(failed_ids(&response), object_message);
    assert_eq!(env.count().await, 0);
}

#[tokio::test]
async fn the_deadline_mid_batch_fails_the_unfinished_messages_and_their_redelivery_loads_them() {
    let env = setup("deadline").await;
    for n in 0..6 {
        env.put(&key(n), cloudtrail(&format!("deadline-{n}"), 21))
            .await;
    }
    let messages = env.receive(6).await;
    // A slow cluster: each object takes three requests of 300 ms, two objects at a time.
    let proxy = crate::sink::proxy::FaultProxy::start(
        &tests::opensearch_url(),
        crate::sink::proxy::Faults {
            delay: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let handler = env.handler_at(&proxy.url, Duration::from_secs(30)).await;
    let event = serde_json::to_value(sqs_event(&messages)).expect("json");
    let answer = handler
        .handle_until(
            event,
            Some(tokio::time::Instant::now() + Duration::from_millis(1500)),
        )
        .await
        .expect("handled");
    let failures: Vec<String> = answer["batchItemFailures"]
        .as_array()
        .expect("a partial batch response")
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !failures.is_empty() && failures.len() < 6,
        "the deadline came mid-batch: {failures:?}"
    );
    // SQS delivers the failed messages again; nothing else is needed for every document.
    let again: Vec<Message> = messages
        .iter()
        .filter(|m| failures.iter().any(|f| Some(f.as_str()) == m.message_id()))
        .cloned()
        .collect();
    let response = env
        .handler()
        .await
        .handle_sqs(sqs_event(&again))
        .await
        .expect("handled");
    assert!(failed_ids(&response).is_empty());
    assert_eq!(env.count().await, 6 * 21);
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dead_letter_queue_and_is_redriven_by_the_cli() {
    use aws_sdk_sqs::types::QueueAttributeName;
    let env = setup("dlq").await;
    let dlq_url = env
        .sqs
        .create_queue()
        .queue_name(tests::unique_name("lambda-dlq"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("URL");
    let attribute = |url: &str, name: QueueAttributeName| {
        let sqs = env.sqs.clone();
        let url = url.to_owned();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(name.clone())
                .send()
                .await
                .expect("GetQueueAttributes")
                .attributes
                .and_then(|a| a.get(&name).cloned())
                .expect("attribute")
        }
    };
    let dlq_arn = attribute(&dlq_url, QueueAttributeName::QueueArn).await;
    env.sqs
        .set_queue_attributes()
        .queue_url(&env.queue_url)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}).to_string(),
        )
        .send()
        .await
        .expect("SetQueueAttributes");
    env.put(&key(1), cloudtrail("poison", 17)).await;
    let messages = env.receive(1).await;

    // The cluster is unreachable: the object fails, its message is not deleted.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("address"))
    };
    let handler = env.handler_at(&closed, Duration::from_secs(1)).await;
    let response = handler
        .handle_sqs(sqs_event(&messages))
        .await
        .expect("handled");
    let object_messages: Vec<&Message> = messages
        .iter()
        .filter(|m| !m.body().unwrap_or_default().contains("s3:TestEvent"))
        .collect();
    assert_eq!(failed_ids(&response).len(), object_messages.len());
    // Received once already: the next receive moves it to the dead-letter queue.
    for m in &object_messages {
        env.sqs
            .change_message_visibility()
            .queue_url(&env.queue_url)
            .receipt_handle(m.receipt_handle().expect("handle"))
            .visibility_timeout(0)
            .send()
            .await
            .expect("ChangeMessageVisibility");
    }
    let again = env
        .sqs
        .receive_message()
        .queue_url(&env.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("ReceiveMessage");
    assert!(again.messages.unwrap_or_default().is_empty());
    assert_eq!(
        attribute(&dlq_url, QueueAttributeName::ApproximateNumberOfMessages).await,
        "1"
    );

    // The cause fixed, the CLI drains the dead-letter queue into the cluster.
    let work = tempfile::tempdir().expect("tempdir");
    let user = work.path().join("user.ini");
    std::fs::write(&user, format!("[cloudtrail]\nindex_name = {}\n", env.index)).expect("ini");
    let mut cmd = crate::cli::loader();
    cmd.arg("load")
        .args([
            "--queue",
            &dlq_url,
            "--opensearch",
            &tests::opensearch_url(),
        ])
        .arg("--config")
        .arg(&user)
        .arg("--report-dir")
        .arg(work.path());
    let out = crate::cli::run_async(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(env.count().await, 17);
    assert_eq!(
        attribute(&dlq_url, QueueAttributeName::ApproximateNumberOfMessages).await,
        "0"
    );
}
