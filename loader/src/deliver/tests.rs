use super::fakes::*;
use super::*;
use crate::config::Config;
use std::collections::HashSet;

const BUCKET: &str = "logs";

fn pipeline() -> Arc<Pipeline> {
    Arc::new(Pipeline::new(Config::builtin().expect("built-in config")))
}

fn ingested() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

async fn deliver(
    source: &FakeSource,
    sink: &FakeSink,
    key: &str,
    limits: ChunkLimits,
) -> ObjectReport {
    deliver_quietly(
        &pipeline(),
        source,
        sink,
        &ObjectRef::s3(BUCKET, key),
        ingested(),
        limits,
    )
    .await
}

#[tokio::test]
async fn chunking_keeps_order_and_counts() {
    let key = cloudtrail_key(1);
    let body = cloudtrail("e", 23);
    let source = FakeSource {
        streamed: true,
        ..FakeSource::default()
    }
    .with(&key, body.clone());
    let sink = FakeSink::default();
    let limits = ChunkLimits {
        max_docs: 5,
        max_bytes: usize::MAX,
    };
    let report = deliver(&source, &sink, &key, limits).await;

    assert_eq!(report.outcome, DeliveryOutcome::Loaded);
    assert_eq!(report.log_type.as_deref(), Some("cloudtrail"));
    assert_eq!(sink.chunk_sizes(), [5, 5, 5, 5, 3]);
    let expected: Vec<String> = (0..23).map(|i| format!("e-{i}")).collect();
    assert_eq!(sink.ids(), expected);
    assert_eq!(report.stats.records(), 23);
    assert_eq!(report.stats.documents(), 23);
    assert_eq!(report.sink.created, 23);
    assert_eq!(report.input_bytes, body.len() as u64);
    // Origins name the object and the document's place in it.
    let chunks = sink.chunks.lock().expect("lock");
    let last = chunks.last().and_then(|c| c.last()).expect("an item");
    assert_eq!(&*last.origin.object, format!("s3://{BUCKET}/{key}"));
    assert_eq!(last.origin.record, 22);
}

#[tokio::test]
async fn chunks_are_cut_by_bytes_too() {
    let key = cloudtrail_key(2);
    let source = FakeSource::default().with(&key, cloudtrail("b", 10));
    let sink = FakeSink::default();
    // Each document is well over 100 bytes: one per chunk.
    let limits = ChunkLimits {
        max_docs: 1000,
        max_bytes: 100,
    };
    let report = deliver(&source, &sink, &key, limits).await;
    assert_eq!(report.outcome, DeliveryOutcome::Loaded);
    assert_eq!(sink.chunk_sizes(), vec![1; 10]);
}

#[tokio::test]
async fn one_broken_object_fails_only_itself() {
    let keys: Vec<String> = (10..13).map(cloudtrail_key).collect();
    let mut truncated = cloudtrail("broken", 200);
    truncated.truncate(truncated.len() / 2);
    let source = FakeSource::default()
        .with(&keys[0], cloudtrail("a", 3))
        .with(&keys[1], truncated)
        .with(&keys[2], cloudtrail("c", 4));
    let sink = FakeSink::default();
    let mut reports = Vec::new();
    for key in &keys {
        reports.push(deliver(&source, &sink, key, ChunkLimits::default()).await);
    }
    assert_eq!(reports[0].outcome, DeliveryOutcome::Loaded);
    assert_eq!(reports[2].outcome, DeliveryOutcome::Loaded);
    match &reports[1].outcome {
        DeliveryOutcome::Failed(reason) => {
            assert!(
                reason.contains(&format!("s3://{BUCKET}/{}", keys[1])),
                "{reason}"
            );
        }
        other => panic!("truncated gzip: {other:?}"),
    }
    assert_eq!(reports[0].sink.created + reports[2].sink.created, 7);
}

#[tokio::test]
async fn a_skipped_object_is_never_opened() {
    let key =
        "AWSLogs/o-abcdef1234/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/digest.json.gz";
    let source = FakeSource::default().with(key, b"digest".to_vec());
    let sink = FakeSink::default();
    let report = deliver(&source, &sink, key, ChunkLimits::default()).await;
    assert!(
        matches!(&report.outcome, DeliveryOutcome::Skipped(r) if r.contains("digest")),
        "{:?}",
        report.outcome
    );
    assert!(!report.outcome.is_failed());
    assert!(source.opened.lock().expect("lock").is_empty());
    assert_eq!(report.stats.objects, 1);
    assert_eq!(report.stats.skipped.values().sum::<u64>(), 1);
    assert!(report.metrics(Metrics::new("t")).is_none());
}

#[tokio::test]
async fn an_object_that_cannot_be_opened_fails_naming_it() {
    let key = cloudtrail_key(3);
    let report = deliver(
        &FakeSource::default(),
        &FakeSink::default(),
        &key,
        ChunkLimits::default(),
    )
    .await;
    match &report.outcome {
        DeliveryOutcome::Failed(reason) => {
            assert!(reason.contains(&format!("s3://{BUCKET}/{key}")), "{reason}");
            assert!(reason.contains("NoSuchKey"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.stats.error_count, 1);
}

#[tokio::test]
async fn a_sink_failure_fails_the_object_and_stops_reading_it() {
    let key = cloudtrail_key(4);
    let name = format!("s3://{BUCKET}/{key}");
    let source = FakeSource::default().with(&key, cloudtrail("s", 20_000));
    let sink = FakeSink {
        fail: HashSet::from([name.clone()]),
        ..FakeSink::default()
    };
    let limits = ChunkLimits {
        max_docs: 10,
        max_bytes: usize::MAX,
    };
    let report = deliver(&source, &sink, &key, limits).await;
    match &report.outcome {
        DeliveryOutcome::Failed(reason) => {
            assert!(
                reason.contains(&name) && reason.contains("HTTP 503"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The first failed chunk ends the delivery: nothing more is written.
    assert_eq!(sink.chunk_sizes(), [10]);
    assert_eq!(report.sink.failed, 10);
    // The documents count as not loaded by the sink, not as bad records.
    assert_eq!(report.stats.error_count, 0, "{:?}", report.stats.errors);
}

#[tokio::test]
async fn bad_records_are_counted_but_do_not_fail_the_object() {
    let key = cloudtrail_key(5);
    let json = br#"{"Records":[{"eventID":"ok-1","eventTime":"2024-05-01T00:00:00Z"},42,{"eventID":"ok-2","eventTime":"2024-05-01T00:00:00Z"}]}"#;
    let source = FakeSource::default().with(&key, gzip(json));
    let sink = FakeSink::default();
    let report = deliver(&source, &sink, &key, ChunkLimits::default()).await;
    assert_eq!(report.outcome, DeliveryOutcome::Loaded);
    assert_eq!(sink.ids(), ["ok-1", "ok-2"]);
    assert_eq!(report.stats.records(), 3);
    assert_eq!(report.stats.error_count, 1);
    assert_eq!(
        report.stats.errors[0].object,
        format!("s3://{BUCKET}/{key}")
    );
}

#[tokio::test]
async fn metrics_carry_the_es_loader_names_and_the_log_type() {
    let key = cloudtrail_key(6);
    let body = cloudtrail("m", 7);
    let source = FakeSource::default().with(&key, body.clone());
    let sink = FakeSink::default();
    let report = deliver(&source, &sink, &key, ChunkLimits::default()).await;
    let metrics = report.metrics(Metrics::new("Test")).expect("metrics");
    let emf = metrics.to_emf(0);
    assert_eq!(emf["logtype"], "cloudtrail");
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Test");
    assert_eq!(metrics.value("InputLogFileSize"), Some(body.len() as f64));
    assert_eq!(metrics.value("TotalLogFileCount"), Some(1.0));
    assert_eq!(metrics.value("TotalLogCount"), Some(7.0));
    assert_eq!(metrics.value("SuccessLogLoadCount"), Some(7.0));
    assert_eq!(metrics.value("ErrorLogLoadCount"), Some(0.0));
    for name in [
        "OutputDataSize",
        "TotalDurationTime",
        "EsResponseTime",
        "DuplicateLogCount",
        "QuarantinedLogCount",
        "RetryCount",
    ] {
        assert!(metrics.value(name).is_some(), "{name} missing");
    }
}

fn organization_pipeline() -> Arc<Pipeline> {
    let org = crate::provenance::OrganizationId::parse("o-abcdef1234").expect("organization id");
    Arc::new(
        Pipeline::new(Config::builtin().expect("built-in config")).with_organization(Some(org)),
    )
}

/// The account-trail layout: a key a member account can write under its own prefix.
const ACCOUNT_TRAIL_KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_forged.json.gz";

#[tokio::test]
async fn with_an_organization_id_a_cloudtrail_key_outside_its_trail_is_refused_unread() {
    let trusted = cloudtrail_key(7);
    let source = FakeSource::default()
        .with(ACCOUNT_TRAIL_KEY, cloudtrail("forged", 3))
        .with(&trusted, cloudtrail("t", 2));
    let sink = FakeSink::default();
    let pipeline = organization_pipeline();
    let refused = deliver_quietly(
        &pipeline,
        &source,
        &sink,
        &ObjectRef::s3(BUCKET, ACCOUNT_TRAIL_KEY),
        ingested(),
        ChunkLimits::default(),
    )
    .await;
    match &refused.outcome {
        DeliveryOutcome::Refused(reason) => assert_eq!(
            reason,
            &format!(
                "s3://{BUCKET}/{ACCOUNT_TRAIL_KEY}: refused: CloudTrail objects must come from the organization trail of o-abcdef1234 (AWSLogs/o-abcdef1234/<account>/CloudTrail/<region>/...); this key is writable by a member account"
            )
        ),
        other => panic!("{other:?}"),
    }
    assert!(refused.outcome.is_refused() && !refused.outcome.is_failed());
    assert_eq!(refused.log_type.as_deref(), Some("cloudtrail"));
    assert_eq!(refused.stats.objects, 1);
    assert_eq!(refused.stats.refused.values().sum::<u64>(), 1);
    assert_eq!(refused.stats.error_count, 0);
    assert!(refused.metrics(Metrics::new("t")).is_none());
    assert!(refused.stats.summary().contains(
        "  refused objects (CloudTrail objects must come from the organization trail of o-abcdef1234"
    ));

    let loaded = deliver_quietly(
        &pipeline,
        &source,
        &sink,
        &ObjectRef::s3(BUCKET, &trusted),
        ingested(),
        ChunkLimits::default(),
    )
    .await;
    assert_eq!(loaded.outcome, DeliveryOutcome::Loaded);
    assert_eq!(*source.opened.lock().expect("lock"), [trusted]);
    assert_eq!(sink.ids(), ["t-0", "t-1"]);
}

#[tokio::test]
async fn without_an_organization_id_an_account_trail_loads_and_digests_stay_skipped() {
    let source = FakeSource::default().with(ACCOUNT_TRAIL_KEY, cloudtrail("acct", 2));
    let sink = FakeSink::default();
    let report = deliver(&source, &sink, ACCOUNT_TRAIL_KEY, ChunkLimits::default()).await;
    assert_eq!(report.outcome, DeliveryOutcome::Loaded);
    assert_eq!(sink.ids(), ["acct-0", "acct-1"]);

    // A digest is skipped before the organization is looked at, even at a forged key.
    let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/111122223333_CloudTrail-Digest_us-east-1_x.json.gz";
    let report = deliver_quietly(
        &organization_pipeline(),
        &source,
        &sink,
        &ObjectRef::s3(BUCKET, digest),
        ingested(),
        ChunkLimits::default(),
    )
    .await;
    assert!(
        matches!(&report.outcome, DeliveryOutcome::Skipped(r) if r.contains("digest")),
        "{:?}",
        report.outcome
    );
}

#[test]
fn object_names() {
    assert_eq!(ObjectRef::s3("b", "a b/c").name(), "s3://b/a b/c");
    assert_eq!(
        ObjectRef::local("/data/AWSLogs/x", "AWSLogs/x").name(),
        "/data/AWSLogs/x"
    );
    assert_eq!(ObjectRef::new(None, "AWSLogs/x").name(), "AWSLogs/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_on_several_threads_is_written_in_several_requests_at_once() {
    let key = cloudtrail_key(40);
    let records = 3_000;
    let source = FakeSource::default().with(&key, cloudtrail("p", records));
    let sink = FakeSink {
        wait_for_company: Some(Duration::from_secs(2)),
        ..FakeSink::default()
    };
    let pipeline = Arc::new(Pipeline::new(Config::builtin().expect("config")).with_threads(3));
    let limits = ChunkLimits {
        max_docs: 100,
        max_bytes: usize::MAX,
    };
    let object = ObjectRef::s3(BUCKET, &key);
    let report = deliver_quietly(&pipeline, &source, &sink, &object, ingested(), limits).await;

    assert_eq!(report.outcome, DeliveryOutcome::Loaded);
    assert_eq!(report.stats.documents(), records as u64);
    assert_eq!(report.sink.created, records as u64);
    assert!(sink.max_in_flight.load(Ordering::SeqCst) > 1);
    // Every document once, each at its own place in the object.
    let mut ids = sink.ids();
    ids.sort();
    let mut expected: Vec<String> = (0..records).map(|i| format!("p-{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    let chunks = sink.chunks.lock().expect("lock");
    let mut places: Vec<u64> = chunks.iter().flatten().map(|i| i.origin.record).collect();
    places.sort_unstable();
    assert_eq!(places, (0..records as u64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_failure_fails_an_object_loaded_on_several_threads() {
    let key = cloudtrail_key(41);
    let source = FakeSource::default().with(&key, cloudtrail("f", 5_000));
    let sink = FakeSink {
        fail: HashSet::from([format!("s3://{BUCKET}/{key}")]),
        ..FakeSink::default()
    };
    let pipeline = Arc::new(Pipeline::new(Config::builtin().expect("config")).with_threads(2));
    let limits = ChunkLimits {
        max_docs: 50,
        max_bytes: usize::MAX,
    };
    let object = ObjectRef::s3(BUCKET, &key);
    let report = deliver_quietly(&pipeline, &source, &sink, &object, ingested(), limits).await;
    assert!(report.outcome.is_failed(), "{:?}", report.outcome);
    // The read stopped soon after the failure: far from every chunk was written.
    assert!(
        sink.chunk_sizes().len() < 5_000 / 50,
        "{}",
        sink.chunk_sizes().len()
    );
    // The abort itself is no bad record.
    assert_eq!(report.stats.error_count, 0, "{:?}", report.stats.errors);
}
