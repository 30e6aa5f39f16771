use super::*;
use crate::tests::MemoryStore;
use std::collections::VecDeque;
use std::io::Read;
use std::sync::Mutex;

const FUNCTION_ARN: &str =
    "arn:aws:lambda:eu-west-1:111122223333:function:org-security-logs-collector";
const SUBSCRIPTION_EVENT: &str = include_str!("../../fixtures/subscription-event.json");
const CONTROL_EVENT: &str = include_str!("../../fixtures/control-message-event.json");
const SECURITY_HUB_EVENT: &str = include_str!("../../fixtures/securityhub-finding-event.json");
const SUBSCRIPTION_KEY: &str = "AWSLogs/111122223333/CloudWatchLogs/eu-west-1/%2Fvar/log/secure/\
    2024/05/20/10/i-0a1b2c3d4e5f60718-38273462897203948723049823749823749827349827349827340000.json.gz";
const SECURITY_HUB_KEY: &str = "AWSLogs/111122223333/SecurityHub/eu-west-1/2024/05/20/09/\
    5f7c3e1a-9b2d-4c6e-8a10-2b3c4d5e6f70.json.gz";

/// The record Lambda sends to an on-failure destination, with `event` inserted verbatim.
fn on_failure(event: &str, function_arn: &str) -> String {
    format!(
        r#"{{"version":"1.0","timestamp":"2026-03-02T10:00:00.000Z",
        "requestContext":{{"requestId":"c0ffee00-1111-2222-3333-444455556666","functionArn":"{function_arn}","condition":"RetriesExhausted","approximateInvokeCount":3}},
        "requestPayload":{event},
        "responseContext":{{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"}},
        "responsePayload":{{"errorType":"StoreError","errorMessage":"could not write s3://central/x: AccessDenied"}}}}"#
    )
}

fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn message(id: &str, body: &str, pairs: &[(&str, &str)]) -> QueueMessage {
    QueueMessage {
        id: id.to_owned(),
        receipt_handle: format!("handle-{id}"),
        body: body.to_owned(),
        attributes: attributes(pairs),
    }
}

fn eventbridge_dead_letter(id: &str) -> QueueMessage {
    message(
        id,
        SECURITY_HUB_EVENT,
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
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn delivered_gzip(event: &str) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(event).unwrap();
    shared::payload::decode_base64(value["awslogs"]["data"].as_str().unwrap()).unwrap()
}

#[test]
fn on_failure_record_gives_the_event_and_the_plain_function() {
    let body = on_failure(SECURITY_HUB_EVENT, &format!("{FUNCTION_ARN}:$LATEST"));
    let letter = parse_dead_letter(&body, &BTreeMap::new(), None).unwrap();
    // The event's own text, not a re-serialization.
    assert_eq!(letter.event, SECURITY_HUB_EVENT.trim_end());
    assert_eq!(letter.function_arn, FUNCTION_ARN);
    assert_eq!(
        letter.request_id.as_deref(),
        Some("c0ffee00-1111-2222-3333-444455556666")
    );
    assert_eq!(letter.source, RecordSource::OnFailureDestination);
    assert_eq!(
        letter.original_error.as_deref(),
        Some(
            "RetriesExhausted after 3 attempts: StoreError: could not write s3://central/x: AccessDenied"
        )
    );
}

#[test]
fn event_age_exceeded_record_without_response_is_read() {
    let body = format!(
        r#"{{"version":"1.0","timestamp":"2026-03-02T10:00:00.000Z","requestContext":{{"requestId":"r-2","functionArn":"{FUNCTION_ARN}:live","condition":"EventAgeExceeded"}},"requestPayload":{CONTROL_EVENT}}}"#
    );
    let letter = parse_dead_letter(&body, &BTreeMap::new(), None).unwrap();
    assert_eq!(letter.event, CONTROL_EVENT.trim_end());
    assert_eq!(letter.function_arn, FUNCTION_ARN);
    assert_eq!(letter.original_error.as_deref(), Some("EventAgeExceeded"));
}

#[test]
fn eventbridge_dead_letter_is_the_event_itself() {
    let mut dead = eventbridge_dead_letter("m-1");
    dead.attributes
        .insert("TARGET_ARN".into(), format!("{FUNCTION_ARN}:production"));
    let letter = parse_dead_letter(&dead.body, &dead.attributes, None).unwrap();
    assert_eq!(letter.event, SECURITY_HUB_EVENT);
    assert_eq!(letter.function_arn, FUNCTION_ARN);
    assert_eq!(letter.request_id, None);
    assert_eq!(letter.source, RecordSource::Event);
    assert_eq!(
        letter.original_error.as_deref(),
        Some("SDK_CLIENT_ERROR: Unable to invoke Lambda function")
    );
    // A function's own dead-letter queue: the subscription event as body, Lambda's attributes.
    let letter = parse_dead_letter(
        SUBSCRIPTION_EVENT,
        &attributes(&[("RequestID", "r-9"), ("ErrorCode", "200")]),
        Some(FUNCTION_ARN),
    )
    .unwrap();
    assert_eq!(letter.event, SUBSCRIPTION_EVENT);
    assert_eq!(letter.request_id.as_deref(), Some("r-9"));
    assert_eq!(letter.original_error.as_deref(), Some("200"));
}

#[test]
fn function_arn_comes_from_the_record_then_the_attribute_then_the_flag() {
    let other = "arn:aws:lambda:us-east-1:444455556666:function:other";
    let fallback = "arn:aws:lambda:ap-south-1:777788889999:function:flag";
    let target = attributes(&[("TARGET_ARN", other)]);
    let record = on_failure(SECURITY_HUB_EVENT, FUNCTION_ARN);
    let arn = |body: &str, attrs: &BTreeMap<String, String>, flag: Option<&str>| {
        parse_dead_letter(body, attrs, flag).map(|l| l.function_arn)
    };
    assert_eq!(arn(&record, &target, Some(fallback)).unwrap(), FUNCTION_ARN);
    let no_arn_record = record.replace(&format!(r#""functionArn":"{FUNCTION_ARN}","#), "");
    assert_eq!(arn(&no_arn_record, &target, Some(fallback)).unwrap(), other);
    assert_eq!(
        arn(&no_arn_record, &BTreeMap::new(), Some(fallback)).unwrap(),
        fallback
    );
    assert_eq!(
        arn(SECURITY_HUB_EVENT, &target, Some(fallback)).unwrap(),
        other
    );
    assert_eq!(
        arn(
            SECURITY_HUB_EVENT,
            &attributes(&[("TARGET_ARN", " ")]),
            Some(fallback)
        )
        .unwrap(),
        fallback
    );
    assert!(matches!(
        arn(SECURITY_HUB_EVENT, &BTreeMap::new(), None),
        Err(RecordError::NoFunctionArn)
    ));
    assert!(matches!(
        arn(&no_arn_record, &BTreeMap::new(), Some("")),
        Err(RecordError::NoFunctionArn)
    ));
    // A wrong ARN is an error, never skipped for the next one.
    let bad = record.replace(FUNCTION_ARN, "arn:aws:sns:eu-west-1:111122223333:topic");
    let error = arn(&bad, &target, Some(fallback)).unwrap_err();
    assert!(
        matches!(
            error,
            RecordError::FunctionArn {
                origin: "requestContext.functionArn",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("topic"), "{error}");
}

#[test]
fn qualifiers_are_stripped_from_function_arns() {
    for (arn, plain) in [
        (FUNCTION_ARN, FUNCTION_ARN),
        (&format!("{FUNCTION_ARN}:$LATEST") as &str, FUNCTION_ARN),
        (&format!("{FUNCTION_ARN}:3"), FUNCTION_ARN),
        (&format!("{FUNCTION_ARN}:live"), FUNCTION_ARN),
        (&format!(" {FUNCTION_ARN}:live "), FUNCTION_ARN),
        (
            "arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:f:7",
            "arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:f",
        ),
    ] {
        assert_eq!(unqualified_function_arn(arn), Some(plain), "{arn}");
    }
    for arn in [
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:eu-west-1:111122223333:function:",
        "arn:aws:lambda:eu-west-1:111122223333:function::3",
        "arn:aws:lambda:eu-west-1::function:f",
        "arn:aws:lambda:eu-west-1:111122223333:layer:x:1",
    ] {
        assert_eq!(unqualified_function_arn(arn), None, "{arn}");
    }
}

#[test]
fn messages_that_are_no_dead_letter_are_named() {
    let cases = [
        ("", "EmptyMessage", "empty"),
        ("  \n", "EmptyMessage", "empty"),
        ("this is not a dead letter", "NotJson", "not JSON"),
        (r#"{"requestContext": {"#, "NotJson", "not JSON"),
        ("[1,2]", "NotJson", "not an object"),
        (r#""text""#, "NotJson", "not an object"),
        (r#"{"hello":"world"}"#, "UnknownRecord", "neither"),
        (
            r#"{"source":"aws.securityhub"}"#,
            "UnknownRecord",
            "neither",
        ),
        (
            r#"{"requestContext":{"requestId":"r-1"},"requestPayload":null}"#,
            "NoRequestPayload",
            "r-1",
        ),
        (
            r#"{"requestContext":{"functionArn":3}}"#,
            "NotJson",
            "unexpected type",
        ),
        (r#"{"requestContext":"x"}"#, "NotJson", "unexpected type"),
    ];
    for (body, kind, text) in cases {
        let error = parse_dead_letter(body, &BTreeMap::new(), Some(FUNCTION_ARN)).unwrap_err();
        assert_eq!(error.kind(), kind, "{body}: {error}");
        assert!(error.to_string().contains(text), "{body}: {error}");
    }
}

/// An SQS queue in memory: received messages are in flight until deleted or released.
#[derive(Default)]
struct FakeQueue {
    visible: Mutex<VecDeque<QueueMessage>>,
    in_flight: Mutex<Vec<QueueMessage>>,
    deleted: Mutex<Vec<String>>,
    released: Mutex<Vec<QueueMessage>>,
    /// The `max` of every receive.
    asked: Mutex<Vec<usize>>,
    /// Receives that succeed before every later one fails.
    receives_before_failure: Option<usize>,
    fail_delete: bool,
    /// Every receive also returns the messages in flight again, with a new handle, as SQS does
    /// once their visibility timeout has passed.
    redeliver: bool,
}

impl FakeQueue {
    fn with(messages: Vec<QueueMessage>) -> Self {
        Self {
            visible: Mutex::new(messages.into()),
            ..Self::default()
        }
    }

    fn deleted(&self) -> Vec<String> {
        self.deleted.lock().unwrap().clone()
    }

    fn released(&self) -> Vec<String> {
        self.released
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.id.clone())
            .collect()
    }
}

impl DeadLetterQueue for FakeQueue {
    async fn receive(&self, max: usize) -> Result<Vec<QueueMessage>, QueueError> {
        let mut asked = self.asked.lock().unwrap();
        asked.push(max);
        if self
            .receives_before_failure
            .is_some_and(|n| asked.len() > n)
        {
            return Err(QueueError::Receive {
                queue: "fake".into(),
                reason: "AccessDenied".into(),
            });
        }
        let mut in_flight = self.in_flight.lock().unwrap();
        let mut batch: Vec<QueueMessage> = Vec::new();
        if self.redeliver {
            for m in in_flight.iter_mut() {
                m.receipt_handle.push_str("-again");
                batch.push(m.clone());
            }
        }
        let mut visible = self.visible.lock().unwrap();
        while batch.len() < max.min(RECEIVE_BATCH) {
            let Some(m) = visible.pop_front() else { break };
            in_flight.push(m.clone());
            batch.push(m);
        }
        Ok(batch)
    }

    async fn delete(&self, message: &QueueMessage) -> Result<(), QueueError> {
        if self.fail_delete {
            return Err(QueueError::Delete {
                message_id: message.id.clone(),
                queue: "fake".into(),
                reason: "ReceiptHandleIsInvalid".into(),
            });
        }
        let mut in_flight = self.in_flight.lock().unwrap();
        let before = in_flight.len();
        in_flight.retain(|m| m.receipt_handle != message.receipt_handle);
        assert_eq!(in_flight.len() + 1, before, "deleted with a stale handle");
        self.deleted.lock().unwrap().push(message.id.clone());
        Ok(())
    }

    async fn release(&self, message: &QueueMessage) -> Result<(), QueueError> {
        let mut in_flight = self.in_flight.lock().unwrap();
        let Some(pos) = in_flight
            .iter()
            .position(|m| m.receipt_handle == message.receipt_handle)
        else {
            return Err(QueueError::Release {
                message_id: message.id.clone(),
                queue: "fake".into(),
                reason: "stale receipt handle".into(),
            });
        };
        let m = in_flight.remove(pos);
        self.visible.lock().unwrap().push_back(m.clone());
        self.released.lock().unwrap().push(m);
        Ok(())
    }
}

/// The redrive writes into a store the test still holds.
impl ObjectStore for &MemoryStore {
    async fn put_object(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> Result<(), StoreError> {
        (**self)
            .put_object(key, body, content_type, content_encoding)
            .await
    }

    fn uri(&self, key: &str) -> String {
        (**self).uri(key)
    }
}

async fn run(queue: &FakeQueue, store: &MemoryStore, options: &Options) -> Summary {
    let mut metrics = Metrics::new("Test");
    redrive(
        queue,
        "fake",
        store,
        shared::payload::DEFAULT_MAX_DECOMPRESSED,
        options,
        &mut metrics,
    )
    .await
}

/// A subscription delivery, a finding, a control message, garbage, and an event that fails again.
fn mixed_queue() -> FakeQueue {
    let corrupt = r#"{"awslogs":{"data":"H4sI not base64"}}"#;
    FakeQueue::with(vec![
        message(
            "m-subscription",
            &on_failure(SUBSCRIPTION_EVENT, &format!("{FUNCTION_ARN}:$LATEST")),
            &[],
        ),
        eventbridge_dead_letter("m-finding"),
        message("m-control", &on_failure(CONTROL_EVENT, FUNCTION_ARN), &[]),
        message("m-garbage", "\u{1}\u{2} not json", &[]),
        message("m-corrupt", &on_failure(corrupt, FUNCTION_ARN), &[]),
    ])
}

#[tokio::test]
async fn stored_events_are_deleted_and_the_rest_kept_and_reported() {
    let queue = mixed_queue();
    let store = MemoryStore::default();
    let summary = run(&queue, &store, &Options::default()).await;

    assert_eq!(summary.received, 5);
    assert_eq!(summary.stored, 2);
    assert_eq!(summary.acknowledged, 1);
    assert_eq!(summary.failed, 2);
    assert_eq!(summary.deleted, 3);
    assert_eq!(summary.delete_failed, 0);
    assert_eq!(summary.error, None);
    assert!(!summary.is_success());
    assert_eq!(
        summary.objects,
        vec![
            ObjectReport {
                message_id: "m-subscription".into(),
                uri: format!("mem://bucket/{SUBSCRIPTION_KEY}"),
            },
            ObjectReport {
                message_id: "m-finding".into(),
                uri: format!("mem://bucket/{SECURITY_HUB_KEY}"),
            },
        ]
    );
    let failures: Vec<(&str, &str)> = summary
        .failures
        .iter()
        .map(|f| (f.message_id.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(
        failures,
        vec![("m-garbage", "NotJson"), ("m-corrupt", "InvalidPayload")]
    );
    assert!(
        summary.failures[1].reason.contains("base64"),
        "{:?}",
        summary.failures[1]
    );
    assert!(
        summary.failures[1]
            .original_error
            .as_deref()
            .is_some_and(|e| e.contains("AccessDenied")),
        "{:?}",
        summary.failures[1]
    );

    let puts = store.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 2);
    assert_eq!(puts[0].key, SUBSCRIPTION_KEY);
    assert_eq!(puts[0].body, delivered_gzip(SUBSCRIPTION_EVENT));
    assert_eq!(puts[1].key, SECURITY_HUB_KEY);
    assert_eq!(gunzip(&puts[1].body), SECURITY_HUB_EVENT.as_bytes());
    assert_eq!(
        queue.deleted(),
        vec!["m-subscription", "m-finding", "m-control"]
    );
    // Left in the queue, and visible again for the next run.
    assert_eq!(queue.released(), vec!["m-garbage", "m-corrupt"]);
    assert_eq!(queue.visible.lock().unwrap().len(), 2);
    assert!(queue.in_flight.lock().unwrap().is_empty());
}

#[tokio::test]
async fn dry_run_names_the_same_objects_and_changes_nothing() {
    let real = run(&mixed_queue(), &MemoryStore::default(), &Options::default()).await;
    let queue = mixed_queue();
    let store = MemoryStore::default();
    let options = Options {
        dry_run: true,
        ..Options::default()
    };
    let summary = run(&queue, &store, &options).await;

    assert!(summary.dry_run);
    assert_eq!(summary.objects, real.objects);
    assert_eq!(
        (
            summary.received,
            summary.stored,
            summary.acknowledged,
            summary.failed
        ),
        (5, 2, 1, 2)
    );
    assert_eq!(summary.deleted, 0);
    assert!(store.puts.lock().unwrap().is_empty());
    assert!(queue.deleted().is_empty());
    assert_eq!(queue.released().len(), 5);
    assert_eq!(queue.visible.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn max_messages_stops_the_run() {
    let messages = (0..15)
        .map(|i| eventbridge_dead_letter(&format!("m-{i}")))
        .collect();
    let queue = FakeQueue::with(messages);
    let options = Options {
        max_messages: Some(12),
        ..Options::default()
    };
    let summary = run(&queue, &MemoryStore::default(), &options).await;
    assert_eq!(summary.received, 12);
    assert_eq!(summary.deleted, 12);
    assert!(summary.is_success());
    assert_eq!(*queue.asked.lock().unwrap(), vec![10, 2]);
    assert_eq!(queue.visible.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_message_received_again_counts_once() {
    let mut queue = FakeQueue::with(vec![
        message("m-garbage", "garbage", &[]),
        eventbridge_dead_letter("m-finding"),
    ]);
    queue.redeliver = true;
    // The cap only keeps a broken loop from running forever.
    let options = Options {
        max_messages: Some(50),
        ..Options::default()
    };
    let summary = run(&queue, &MemoryStore::default(), &options).await;
    assert_eq!(summary.received, 2);
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(queue.deleted(), vec!["m-finding"]);
    // Released with the newest receipt handle (the fake refuses stale ones).
    assert_eq!(queue.released(), vec!["m-garbage"]);
}

#[tokio::test]
async fn a_failed_receive_stops_the_run_and_is_reported() {
    let mut queue = FakeQueue::with(
        (0..12)
            .map(|i| message(&format!("m-{i}"), "garbage", &[]))
            .collect(),
    );
    queue.receives_before_failure = Some(1);
    let summary = run(&queue, &MemoryStore::default(), &Options::default()).await;
    assert_eq!(summary.received, 10);
    let error = summary.error.as_deref().unwrap_or_default();
    assert!(error.contains("AccessDenied"), "{error}");
    assert!(!summary.is_success());
    assert_eq!(queue.released().len(), 10);
}

#[tokio::test]
async fn a_stored_event_whose_delete_fails_is_reported() {
    let mut queue = FakeQueue::with(vec![eventbridge_dead_letter("m-finding")]);
    queue.fail_delete = true;
    let summary = run(&queue, &MemoryStore::default(), &Options::default()).await;
    assert_eq!(
        (summary.stored, summary.deleted, summary.delete_failed),
        (1, 0, 1)
    );
    assert_eq!(summary.failures[0].message_id, "m-finding");
    assert_eq!(summary.failures[0].kind, "DeleteFailed");
    assert!(!summary.is_success());
    assert_eq!(queue.released(), vec!["m-finding"]);
}

#[tokio::test]
async fn a_write_that_fails_again_keeps_the_message() {
    let queue = FakeQueue::with(vec![eventbridge_dead_letter("m-finding")]);
    let store = MemoryStore {
        fail: true,
        ..MemoryStore::default()
    };
    let summary = run(&queue, &store, &Options::default()).await;
    assert_eq!((summary.stored, summary.failed, summary.deleted), (0, 1, 0));
    let failure = &summary.failures[0];
    assert_eq!(failure.kind, "StoreError");
    assert!(failure.reason.contains(SECURITY_HUB_KEY), "{failure:?}");
    assert_eq!(
        failure.original_error.as_deref(),
        Some("SDK_CLIENT_ERROR: Unable to invoke Lambda function")
    );
    assert!(queue.deleted().is_empty());
}

#[tokio::test]
async fn failures_are_listed_up_to_the_cap_and_counted_in_full() {
    let queue = FakeQueue::with(
        (0..MAX_LISTED + 7)
            .map(|i| message(&format!("m-{i}"), "garbage", &[]))
            .collect(),
    );
    let summary = run(&queue, &MemoryStore::default(), &Options::default()).await;
    assert_eq!(summary.failed, MAX_LISTED + 7);
    assert_eq!(summary.failures.len(), MAX_LISTED);
}

#[tokio::test]
async fn an_empty_queue_is_a_success() {
    let queue = FakeQueue::default();
    let summary = run(&queue, &MemoryStore::default(), &Options::default()).await;
    assert_eq!(summary.received, 0);
    assert!(summary.is_success());
    assert_eq!(*queue.asked.lock().unwrap(), vec![10]);
}

#[tokio::test]
async fn summary_json_has_the_documented_fields() {
    let summary = run(&mixed_queue(), &MemoryStore::default(), &Options::default()).await;
    let json = serde_json::to_value(&summary).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "acknowledged",
            "delete_failed",
            "deleted",
            "dry_run",
            "failed",
            "failures",
            "objects",
            "queue",
            "received",
            "stored",
        ]
    );
    assert_eq!(
        json["failures"][0],
        serde_json::json!({
            "message_id": "m-garbage",
            "kind": "NotJson",
            "reason": summary.failures[0].reason,
        })
    );
    assert_eq!(json["objects"][0]["message_id"], "m-subscription");
}
