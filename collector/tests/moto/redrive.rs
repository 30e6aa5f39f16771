//! `collector redrive` against a real (emulated) queue and bucket: dead letters of both kinds are
//! written where the function would have written them, and only those are deleted.

use crate::*;
use aws_sdk_sqs::types::MessageAttributeValue;
use base64::Engine;
use collector::redrive::{self, Options, SqsQueue, Summary};
use std::io::Read;

const SUBSCRIPTION_KEY: &str = "AWSLogs/111122223333/CloudWatchLogs/eu-west-1/%2Fvar/log/secure/\
    2024/05/20/10/i-0a1b2c3d4e5f60718-38273462897203948723049823749823749827349827349827340000.json.gz";
const SECURITY_HUB_KEY: &str = "AWSLogs/111122223333/SecurityHub/eu-west-1/2024/05/20/09/\
    5f7c3e1a-9b2d-4c6e-8a10-2b3c4d5e6f70.json.gz";

struct Setup {
    s3: Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue_name: String,
    queue_url: String,
    subscription_id: String,
    finding_id: String,
    garbage_id: String,
}

/// The record Lambda sends to the on-failure destination after the retries of `event` failed.
fn on_failure_record(event: &str) -> String {
    format!(
        r#"{{"version":"1.0","timestamp":"2026-03-02T10:00:00.000Z",
        "requestContext":{{"requestId":"c0ffee00-1111-2222-3333-444455556666","functionArn":"{FUNCTION_ARN}:$LATEST","condition":"RetriesExhausted","approximateInvokeCount":3}},
        "requestPayload":{event},
        "responseContext":{{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"}},
        "responsePayload":{{"errorType":"StoreError","errorMessage":"could not write: AccessDenied"}}}}"#
    )
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("message attribute")
}

/// A bucket, and a queue holding an on-failure record of a subscription delivery, an
/// EventBridge dead letter of a Security Hub finding, and a body that is neither.
async fn setup() -> Setup {
    let config = tests::moto_config(REGION).await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = create_bucket(&s3).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_name = tests::unique_name("collector-dlq");
    let queue_url = sqs
        .create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .expect("CreateQueue in moto")
        .queue_url
        .expect("queue URL");
    let send = |body: String, attributes: &[(&str, &str)]| {
        let mut request = sqs.send_message().queue_url(&queue_url).message_body(body);
        for (name, value) in attributes {
            request = request.message_attributes(*name, string_attribute(value));
        }
        async move {
            request
                .send()
                .await
                .expect("SendMessage in moto")
                .message_id
                .expect("message id")
        }
    };
    let subscription_id = send(on_failure_record(SUBSCRIPTION_EVENT), &[]).await;
    let finding_id = send(
        SECURITY_HUB_EVENT.to_owned(),
        &[
            (
                "RULE_ARN",
                "arn:aws:events:eu-west-1:111122223333:rule/securityhub-findings",
            ),
            ("TARGET_ARN", FUNCTION_ARN),
            ("ERROR_CODE", "SDK_CLIENT_ERROR"),
            ("ERROR_MESSAGE", "Unable to invoke Lambda function"),
        ],
    )
    .await;
    let garbage_id = send("this is not a dead letter".to_owned(), &[]).await;
    Setup {
        s3,
        sqs,
        bucket,
        queue_name,
        queue_url,
        subscription_id,
        finding_id,
        garbage_id,
    }
}

async fn run(setup: &Setup, queue: &str, options: &Options) -> Summary {
    let queue = SqsQueue::open(setup.sqs.clone(), queue)
        .await
        .expect("queue found");
    assert_eq!(queue.url(), setup.queue_url);
    let store = S3Store::new(setup.s3.clone(), &setup.bucket, None, None);
    let mut metrics = Metrics::new("Test");
    redrive::redrive(
        &queue,
        queue.url(),
        store,
        shared::payload::DEFAULT_MAX_DECOMPRESSED,
        options,
        &mut metrics,
    )
    .await
}

/// Ids of the messages still in the queue. They must be visible now: the redrive makes what it
/// leaves visible again when it ends.
async fn messages_left(setup: &Setup) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let answer = setup
            .sqs
            .receive_message()
            .queue_url(&setup.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .expect("ReceiveMessage in moto");
        let batch: Vec<String> = answer
            .messages()
            .iter()
            .filter_map(|m| m.message_id().map(str::to_owned))
            .collect();
        if batch.is_empty() {
            break;
        }
        ids.extend(batch);
    }
    ids.sort();
    ids
}

async fn body_of(setup: &Setup, key: &str) -> (Option<String>, Vec<u8>) {
    let object = setup
        .s3
        .get_object()
        .bucket(&setup.bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {key}: {e}"));
    let encoding = object.content_encoding().map(str::to_owned);
    let body = object.body.collect().await.expect("body").into_bytes();
    (encoding, body.to_vec())
}

#[tokio::test]
async fn redrive_stores_both_kinds_and_keeps_what_is_no_dead_letter() {
    let setup = setup().await;
    let summary = run(&setup, &setup.queue_name, &Options::default()).await;

    assert_eq!(summary.queue, setup.queue_url);
    assert!(!summary.dry_run);
    assert_eq!(
        (
            summary.received,
            summary.stored,
            summary.acknowledged,
            summary.failed,
            summary.deleted,
            summary.delete_failed,
        ),
        (3, 2, 0, 1, 2, 0),
        "{summary:#?}"
    );
    assert_eq!(summary.error, None);
    assert!(!summary.is_success());
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].message_id, setup.garbage_id);
    assert_eq!(summary.failures[0].kind, "NotJson");
    assert!(
        summary.failures[0].reason.contains("not JSON"),
        "{:?}",
        summary.failures[0]
    );
    let mut objects: Vec<(String, String)> = summary
        .objects
        .iter()
        .map(|o| (o.message_id.clone(), o.uri.clone()))
        .collect();
    objects.sort();
    let mut expected = vec![
        (
            setup.subscription_id.clone(),
            format!("s3://{}/{SUBSCRIPTION_KEY}", setup.bucket),
        ),
        (
            setup.finding_id.clone(),
            format!("s3://{}/{SECURITY_HUB_KEY}", setup.bucket),
        ),
    ];
    expected.sort();
    assert_eq!(objects, expected);

    let mut keys = list_keys(&setup.s3, &setup.bucket).await;
    keys.sort();
    assert_eq!(keys, vec![SUBSCRIPTION_KEY, SECURITY_HUB_KEY]);

    // The subscription payload: the gzip exactly as CloudWatch Logs delivered it.
    let event: serde_json::Value = serde_json::from_str(SUBSCRIPTION_EVENT).expect("fixture");
    let delivered = base64::engine::general_purpose::STANDARD
        .decode(event["awslogs"]["data"].as_str().expect("awslogs.data"))
        .expect("fixture is base64");
    let (encoding, body) = body_of(&setup, SUBSCRIPTION_KEY).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(body, delivered);

    // The finding: the event JSON, gzipped.
    let (encoding, body) = body_of(&setup, SECURITY_HUB_KEY).await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut text)
        .expect("gzip body");
    assert_eq!(text, SECURITY_HUB_EVENT);

    assert_eq!(messages_left(&setup).await, vec![setup.garbage_id.clone()]);
}

#[tokio::test]
async fn dry_run_writes_and_deletes_nothing() {
    let setup = setup().await;
    let options = Options {
        dry_run: true,
        ..Options::default()
    };
    // By URL this time: used as it is.
    let summary = run(&setup, &setup.queue_url, &options).await;

    assert!(summary.dry_run);
    assert_eq!(
        (
            summary.received,
            summary.stored,
            summary.failed,
            summary.deleted
        ),
        (3, 2, 1, 0),
        "{summary:#?}"
    );
    let mut uris: Vec<String> = summary.objects.iter().map(|o| o.uri.clone()).collect();
    uris.sort();
    assert_eq!(
        uris,
        vec![
            format!("s3://{}/{SUBSCRIPTION_KEY}", setup.bucket),
            format!("s3://{}/{SECURITY_HUB_KEY}", setup.bucket),
        ]
    );
    assert_eq!(summary.failures[0].message_id, setup.garbage_id);
    assert!(list_keys(&setup.s3, &setup.bucket).await.is_empty());
    let mut all = vec![
        setup.subscription_id.clone(),
        setup.finding_id.clone(),
        setup.garbage_id.clone(),
    ];
    all.sort();
    assert_eq!(messages_left(&setup).await, all);
}

#[tokio::test]
async fn an_unknown_queue_name_is_named() {
    let config = tests::moto_config(REGION).await;
    let missing = tests::unique_name("no-such-queue");
    let error = SqsQueue::open(aws_sdk_sqs::Client::new(&config), &missing)
        .await
        .expect_err("no such queue");
    let message = error.to_string();
    assert!(
        message.contains(&format!("cannot find the queue {missing}")),
        "{message}"
    );
}
