use super::*;
use crate::config::Config;
use crate::deliver::fakes::{FakeSink, FakeSource, cloudtrail, cloudtrail_key};
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

const BUCKET: &str = "logs";

fn handler(
    source: FakeSource,
    sink: FakeSink,
    concurrency: usize,
) -> Handler<FakeSource, FakeSink> {
    let pipeline = Arc::new(Pipeline::new(Config::builtin().expect("built-in config")));
    let settings = HandlerSettings {
        concurrency,
        ..HandlerSettings::default()
    };
    Handler::new(pipeline, source, sink, settings)
}

/// An S3 notification body for `keys`, keys encoded as S3 does.
fn s3_body(keys: &[&str]) -> String {
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": k.replace('/', "%2F")}},
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

fn sqs_event(bodies: &[String]) -> SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("m{i}"),
                "receiptHandle": format!("r{i}"),
                "body": body,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:objects",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("SQS event")
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn a_broken_object_fails_exactly_its_message() {
    let keys: Vec<String> = (20..23).map(cloudtrail_key).collect();
    let mut broken = cloudtrail("x", 100);
    broken.truncate(broken.len() / 2);
    let source = FakeSource::default()
        .with(&keys[0], cloudtrail("a", 2))
        .with(&keys[1], broken)
        .with(&keys[2], cloudtrail("c", 3));
    let h = handler(source, FakeSink::default(), 4);
    let bodies: Vec<String> = keys.iter().map(|k| s3_body(&[k])).collect();
    let response = h.handle_sqs(sqs_event(&bodies)).await.expect("handled");
    assert_eq!(failed_ids(&response), ["m1"]);
    // Records before the cut may be loaded already; the redelivery then finds them (409).
    let mut ids: Vec<String> = h
        .sink()
        .ids()
        .into_iter()
        .filter(|id| !id.starts_with("x-"))
        .collect();
    ids.sort();
    assert_eq!(ids, ["a-0", "a-1", "c-0", "c-1", "c-2"]);
}

#[tokio::test]
async fn a_body_that_names_nothing_fails_its_message_only() {
    let key = cloudtrail_key(30);
    let source = FakeSource::default().with(&key, cloudtrail("ok", 1));
    let h = handler(source, FakeSink::default(), 4);
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET});
    let bodies = vec![
        r#"{"unexpected":true}"#.to_owned(),
        s3_body(&[&key]),
        test_event.to_string(),
    ];
    let response = h.handle_sqs(sqs_event(&bodies)).await.expect("handled");
    assert_eq!(failed_ids(&response), ["m0"]);
    assert_eq!(h.sink().ids(), ["ok-0"]);
}

#[tokio::test]
async fn sns_and_eventbridge_bodies_load_their_objects() {
    let k1 = cloudtrail_key(40);
    let k2 = cloudtrail_key(41);
    let source = FakeSource::default()
        .with(&k1, cloudtrail("sns", 1))
        .with(&k2, cloudtrail("eb", 1));
    let h = handler(source, FakeSink::default(), 4);
    let sns = json!({"Type": "Notification", "MessageId": "x", "Message": s3_body(&[&k1])});
    let eb = json!({
        "version": "0", "id": "e", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": k2}},
    });
    let response = h
        .handle_sqs(sqs_event(&[sns.to_string(), eb.to_string()]))
        .await
        .expect("handled");
    assert!(failed_ids(&response).is_empty());
    let mut ids = h.sink().ids();
    ids.sort();
    assert_eq!(ids, ["eb-0", "sns-0"]);
}

#[tokio::test]
async fn an_object_named_twice_is_loaded_once_and_fails_both_messages() {
    let key = cloudtrail_key(50);
    let name = format!("s3://{BUCKET}/{key}");
    let source = FakeSource::default().with(&key, cloudtrail("d", 1));
    let sink = FakeSink {
        fail: HashSet::from([name]),
        ..FakeSink::default()
    };
    let h = handler(source, sink, 4);
    let body = s3_body(&[&key]);
    let response = h
        .handle_sqs(sqs_event(&[body.clone(), body]))
        .await
        .expect("handled");
    assert_eq!(failed_ids(&response), ["m0", "m1"]);
    assert_eq!(h.source.opened.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn objects_run_concurrently_up_to_the_bound() {
    let keys: Vec<String> = (60..68).map(cloudtrail_key).collect();
    let mut source = FakeSource::default();
    for (i, k) in keys.iter().enumerate() {
        source = source.with(k, cloudtrail(&format!("p{i}"), 3));
    }
    let h = handler(source, FakeSink::default(), 2);
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let response = h
        .handle_sqs(sqs_event(&[s3_body(&refs)]))
        .await
        .expect("handled");
    assert!(failed_ids(&response).is_empty());
    assert_eq!(h.sink().ids().len(), 24);
    assert!(h.sink().max_in_flight.load(Ordering::SeqCst) <= 2);
}

#[tokio::test]
async fn direct_events_fail_the_invocation_when_an_object_fails() {
    let good = cloudtrail_key(70);
    let missing = cloudtrail_key(71);
    let source = FakeSource::default().with(&good, cloudtrail("g", 1));
    let h = handler(source, FakeSink::default(), 4);

    let ok: Value = serde_json::from_str(&s3_body(&[&good])).expect("json");
    let answer = h.handle(ok).await.expect("loads");
    assert_eq!(answer, json!({"loaded": 1, "skipped": 0, "refused": 0}));

    let bad: Value = serde_json::from_str(&s3_body(&[&good, &missing])).expect("json");
    let err = h.handle(bad).await.expect_err("one object is missing");
    assert_eq!(err.kind(), "ObjectsFailed");
    assert!(
        err.to_string()
            .contains(&format!("s3://{BUCKET}/{missing}")),
        "{err}"
    );

    let unknown = h.handle(json!({"hello": 1})).await.expect_err("unknown");
    assert_eq!(unknown.kind(), "BadEvent");
}

#[tokio::test]
async fn the_sqs_answer_is_a_partial_batch_response() {
    let h = handler(FakeSource::default(), FakeSink::default(), 4);
    let event = sqs_event(&["nonsense".to_owned()]);
    let value = serde_json::to_value(event).expect("json");
    let answer = h.handle(value).await.expect("handled");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m0"}]})
    );
}

/// The account-trail layout: writable by a member account under its own prefix.
const FORGED_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_forged.json.gz";

fn organization_handler(source: FakeSource) -> Handler<FakeSource, FakeSink> {
    let org = crate::provenance::OrganizationId::parse("o-abcdef1234").expect("organization id");
    let pipeline =
        Pipeline::new(Config::builtin().expect("built-in config")).with_organization(Some(org));
    Handler::new(
        Arc::new(pipeline),
        source,
        FakeSink::default(),
        HandlerSettings::default(),
    )
}

#[tokio::test]
async fn a_refused_object_is_counted_and_its_message_is_not_retried() {
    let trusted = cloudtrail_key(80);
    let source = FakeSource::default()
        .with(&trusted, cloudtrail("org", 2))
        .with(FORGED_KEY, cloudtrail("forged", 2));
    let h = organization_handler(source);
    let bodies = vec![s3_body(&[&trusted]), s3_body(&[FORGED_KEY])];
    let (response, summary) = h.run_sqs(sqs_event(&bodies), None).await.expect("handled");
    assert!(failed_ids(&response).is_empty(), "{response:?}");
    assert_eq!(
        (
            summary.loaded,
            summary.refused,
            summary.failed,
            summary.skipped
        ),
        (1, 1, 0, 0)
    );
    assert_eq!(h.sink().ids(), ["org-0", "org-1"]);
    assert_eq!(*h.source.opened.lock().expect("lock"), [trusted]);

    let metrics = invocation_metrics(Metrics::new("Test"), &summary, bodies.len());
    assert_eq!(metrics.value("RefusedObjectCount"), Some(1.0));
    assert_eq!(metrics.value("FailedObjectCount"), Some(0.0));
    assert_eq!(metrics.value("SkippedObjectCount"), Some(0.0));
    assert_eq!(metrics.to_emf(0)["Function"], "loader");
}

#[tokio::test]
async fn quarantined_and_rejected_documents_of_every_object_are_summed_for_the_alarms() {
    let (first, second) = (cloudtrail_key(1), cloudtrail_key(2));
    let source = FakeSource::default()
        .with(&first, cloudtrail("one", 3))
        .with(&second, cloudtrail("two", 2));
    let sink = FakeSink {
        quarantine: ["one-1".to_owned(), "two-0".to_owned()].into(),
        rejected_per_write: 4,
        ..FakeSink::default()
    };
    let h = handler(source, sink, 2);
    let bodies = vec![s3_body(&[&first]), s3_body(&[&second])];
    let (response, summary) = h.run_sqs(sqs_event(&bodies), None).await.expect("handled");
    assert!(
        failed_ids(&response).is_empty(),
        "a quarantined document does not fail its object: {response:?}"
    );
    assert_eq!(summary.loaded, 2);
    assert_eq!(summary.quarantined, 2);
    let writes = h.sink().chunk_sizes().len() as u64;
    assert_eq!(summary.write_rejected, 4 * writes);
    let metrics = invocation_metrics(Metrics::new("Test"), &summary, bodies.len());
    assert_eq!(metrics.value("QuarantinedLogCount"), Some(2.0));
    assert_eq!(
        metrics.value("WriteRejectedCount"),
        Some((4 * writes) as f64)
    );
}

#[tokio::test]
async fn a_direct_event_with_a_refused_object_does_not_fail() {
    let h = organization_handler(FakeSource::default().with(FORGED_KEY, cloudtrail("f", 1)));
    let event: Value = serde_json::from_str(&s3_body(&[FORGED_KEY])).expect("json");
    let answer = h
        .handle(event)
        .await
        .expect("a retry cannot help: no failure");
    assert_eq!(answer, json!({"loaded": 0, "skipped": 0, "refused": 1}));
    assert!(h.source.opened.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn objects_not_loaded_by_the_deadline_fail_their_messages_and_the_others_load() {
    let keys: Vec<String> = (30..33).map(cloudtrail_key).collect();
    let mut source = FakeSource::default()
        .with(&keys[0], cloudtrail("a", 2))
        .with(&keys[1], cloudtrail("b", 2))
        .with(&keys[2], cloudtrail("c", 3));
    source.hung.insert(keys[1].clone());
    let h = handler(source, FakeSink::default(), 4);
    let bodies: Vec<String> = keys.iter().map(|k| s3_body(&[k])).collect();
    let started = Instant::now();
    let (response, summary) = h
        .run_sqs(
            sqs_event(&bodies),
            Some(started + std::time::Duration::from_millis(300)),
        )
        .await
        .expect("handled");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(failed_ids(&response), ["m1"]);
    assert_eq!((summary.loaded, summary.failed), (2, 1));
    assert_eq!(h.sink().ids().len(), 5, "the other objects' documents");
    // Without a deadline nothing is given up.
    let h = handler(
        FakeSource::default().with(&keys[0], cloudtrail("a", 2)),
        FakeSink::default(),
        4,
    );
    let response = h
        .handle_sqs(sqs_event(&bodies[..1]))
        .await
        .expect("handled");
    assert!(failed_ids(&response).is_empty());
}

#[test]
fn objects_load_until_ten_seconds_before_the_deadline_or_a_fifth_of_a_short_one() {
    use std::time::Duration;
    assert_eq!(
        time_to_load(Duration::from_secs(900)),
        Duration::from_secs(890)
    );
    assert_eq!(
        time_to_load(Duration::from_secs(10)),
        Duration::from_secs(8)
    );
    assert_eq!(time_to_load(Duration::ZERO), Duration::ZERO);
}
