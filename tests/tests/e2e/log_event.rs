//! One log event from end to end: a CloudWatch Logs subscription payload goes through the
//! collector's handler into the central bucket (moto), the bucket's notification into the
//! queue, the received message through the loader's handler into OpenSearch (osmem), and a
//! `_search` finds the event's message. Both handlers run in-process, as `main` builds them
//! (moto cannot run Lambda code).

use base64::Engine;
use collector::{Collector, Invocation, Outcome, S3Store};
use flate2::Compression;
use flate2::write::GzEncoder;
use loader::config::Config;
use loader::deliver::S3Source;
use loader::lambda::{Handler, HandlerSettings};
use loader::pipeline::Pipeline;
use loader::sink::{BulkSink, S3Quarantine, SinkConfig};
use opensearch::http::transport::Transport;
use opensearch::{OpenSearch, SearchParts};
use serde_json::{Value, json};
use shared::metrics::Metrics;
use std::io::Write;
use std::sync::Arc;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "111122223333";
const FUNCTION_ARN: &str =
    "arn:aws:lambda:us-east-1:111122223333:function:org-security-logs-collector";

/// The Lambda event CloudWatch Logs sends a subscription's destination.
fn subscription_event(log_group: &str, message: &str, timestamp_ms: i64) -> String {
    let payload = json!({
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": log_group,
        "logStream": "i-0123456789abcdef0",
        "subscriptionFilters": ["org-security-logs"],
        "logEvents": [{
            "id": "38273462897203948723049823749823749827349827349827340000",
            "timestamp": timestamp_ms,
            "message": message,
        }],
    });
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(payload.to_string().as_bytes())
        .expect("gzip in memory");
    let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
    json!({ "awslogs": { "data": data } }).to_string()
}

#[tokio::test]
async fn a_subscription_log_event_is_found_in_opensearch() {
    let config = tests::moto_config(REGION).await;
    let s3 = shared::aws::s3_client(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    // The central bucket, notifying the object-created queue.
    let tests::NotifiedBucket {
        bucket, queue_url, ..
    } = tests::notified_bucket(&s3, &sqs, "e2e-logs").await;

    // The collector stores the payload as delivered.
    let token = tests::unique_name("needle").replace('-', "");
    let message = format!("payment service: card check done for order {token}");
    let event = subscription_event("/app/payments prod", &message, 1_714_557_600_000);
    let collector = Collector::new(
        S3Store::new(s3.clone(), &bucket, None, None),
        shared::payload::DEFAULT_MAX_DECOMPRESSED,
    );
    let outcome = collector
        .handle(
            &event,
            Invocation {
                function_arn: FUNCTION_ARN,
                request_id: "e2e",
            },
            &mut Metrics::new("Test"),
        )
        .await
        .expect("collector stores the payload");
    let Outcome::Stored { uri, .. } = outcome else {
        panic!("not stored: {outcome:?}")
    };

    // The queue holds the bucket's notification (after moto's s3:TestEvent, if it sends one).
    let messages = tests::receive_notifications(&sqs, &queue_url, 1).await;
    let records = tests::sqs_event_records(&messages, REGION);
    assert!(!records.is_empty(), "no notification arrived for {uri}");

    // The loader, with its CloudWatch Logs index renamed for this test.
    let index = tests::unique_name("log-e2e-cwl").to_ascii_lowercase();
    let user = format!("[cloudwatchlogs]\nindex_name = {index}\n");
    let pipeline = Pipeline::new(Config::with_user_file("user.ini", &user).expect("user file"));
    let sink = BulkSink::connect(
        &SinkConfig::new(tests::opensearch_url()),
        Arc::new(S3Quarantine::new(s3.clone(), &bucket, "quarantine/")),
    )
    .await
    .expect("sink");
    let handler = Handler::new(
        Arc::new(pipeline),
        S3Source::new(s3.clone()),
        sink,
        HandlerSettings::default(),
    );
    let answer = handler
        .handle(json!({ "Records": records }))
        .await
        .expect("loader handles the batch");
    assert_eq!(answer, json!({ "batchItemFailures": [] }), "{uri}");

    // The event's message is found by a search.
    let client = OpenSearch::new(Transport::single_node(&tests::opensearch_url()).expect("URL"));
    let pattern = format!("{index}-*");
    let _ = client
        .indices()
        .refresh(opensearch::indices::IndicesRefreshParts::Index(&[&pattern]))
        .send()
        .await;
    let found: Value = client
        .search(SearchParts::Index(&[&pattern]))
        .body(json!({ "query": { "match": { "message": token } } }))
        .send()
        .await
        .expect("_search")
        .json()
        .await
        .expect("_search answer");
    let hits = found["hits"]["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits array: {found}"));
    assert_eq!(hits.len(), 1, "{found}");
    let doc = &hits[0]["_source"];
    assert_eq!(doc["message"], message.as_str());
    assert_eq!(doc["cloud"]["account"]["id"], ACCOUNT);
    assert_eq!(doc["@timestamp"], "2024-05-01T10:00:00.000Z");
    assert_eq!(hits[0]["_index"], format!("{index}-2024-05"));
}
