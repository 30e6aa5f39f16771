//! Through the fault-injecting proxy: whatever the cluster does, every document ends up in the
//! index exactly once and nothing good is quarantined.

use super::proxy::{FaultProxy, Faults};
use super::*;

const DOCS: usize = 1_000;

/// Loads `DOCS` documents through a proxy with `faults` and checks the final state; returns the
/// proxy (for its counters) and the write's stats.
async fn load_through(
    what: &str,
    faults: Faults,
    tune: impl FnOnce(&mut SinkConfig),
) -> (FaultProxy, loader::sink::SinkStats) {
    let proxy = FaultProxy::start(&tests::opensearch_url(), faults).await;
    let index = format!("{}-2024-05", index_prefix(what));
    let items = make_items(
        &format!("s3://logs/AWSLogs/111122223333/{what}.json.gz"),
        DOCS,
        std::slice::from_ref(&index),
    );
    let mut config = test_config(&proxy.url);
    tune(&mut config);
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&config, dir.path()).await;

    let out = sink.write(items).await;
    assert!(out.is_complete(), "{what}: {:?}", out.failures);
    assert_eq!(count(&index).await, DOCS as u64, "{what}: final count");
    assert_eq!(out.stats.quarantined, 0, "{what}: nothing quarantined");
    assert!(quarantined_files(dir.path()).is_empty(), "{what}");
    assert_eq!(
        out.stats.loaded(),
        DOCS as u64,
        "{what}: every document accounted for"
    );
    (proxy, out.stats)
}

#[tokio::test]
async fn one_percent_of_items_throttled() {
    let (proxy, stats) = load_through(
        "item429",
        Faults {
            item_429_every: Some(100),
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    let c = &proxy.counters;
    let throttled = c.get(&c.items_429);
    assert!(throttled >= 10, "429s injected: {throttled}");
    // Throttled items were not stored, so their retry creates them: no duplicates at all.
    assert_eq!((stats.created, stats.duplicates), (DOCS as u64, 0));
    // Only the throttled items were sent again.
    assert_eq!(stats.retries, throttled);
    assert_eq!(c.get(&c.items), DOCS as u64 + throttled);
}

#[tokio::test]
async fn every_fifth_request_unavailable() {
    let (proxy, stats) = load_through(
        "req503",
        Faults {
            request_503_every: Some(5),
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    let c = &proxy.counters;
    let refused = c.get(&c.responses_503);
    assert!(refused >= 4, "503s injected: {refused}");
    assert_eq!(stats.created, DOCS as u64);
    assert_eq!(
        stats.retries,
        refused * 50,
        "each 503 resends its 50 documents"
    );
}

#[tokio::test]
async fn a_connection_reset() {
    let (proxy, stats) = load_through(
        "reset",
        Faults {
            reset_requests: vec![2],
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    let c = &proxy.counters;
    assert_eq!(c.get(&c.resets), 1);
    assert_eq!(stats.created, DOCS as u64);
    assert_eq!(stats.retries, 50);
}

#[tokio::test]
async fn request_too_large_is_halved() {
    let (proxy, stats) = load_through(
        "too-large",
        Faults {
            // About 12 documents of ~330 bytes fit; the sink sends 50 at a time.
            max_body_bytes: Some(4_096),
            ..Faults::default()
        },
        |_| {},
    )
    .await;
    let c = &proxy.counters;
    let too_large = c.get(&c.responses_413);
    assert!(too_large >= 2, "413s: {too_large}");
    assert_eq!(stats.created, DOCS as u64);
    // The sink learns the size: far fewer 413s than requests.
    assert!(
        too_large < stats.requests / 4,
        "413s {too_large} of {} requests",
        stats.requests
    );
}

#[tokio::test]
async fn a_request_timeout() {
    let (proxy, stats) = load_through(
        "timeout",
        Faults {
            stall_requests: vec![1],
            stall_for: Duration::from_secs(4),
            ..Faults::default()
        },
        |config| config.request_timeout = Duration::from_millis(1_500),
    )
    .await;
    let c = &proxy.counters;
    assert_eq!(c.get(&c.stalls), 1);
    // The stalled request was never stored; any other request that was slow enough to time out
    // under load was stored and comes back as duplicates, which is just as correct.
    assert!(stats.retries >= 50, "retries {}", stats.retries);
    assert_eq!(stats.created + stats.duplicates, DOCS as u64);
}

#[tokio::test]
async fn all_faults_at_once_with_concurrent_requests() {
    let (proxy, stats) = load_through(
        "all",
        Faults {
            item_429_every: Some(100),
            request_503_every: Some(5),
            reset_requests: vec![3],
            max_body_bytes: Some(8_192),
            ..Faults::default()
        },
        |config| config.max_in_flight = 8,
    )
    .await;
    let c = &proxy.counters;
    assert!(c.get(&c.items_429) > 0 && c.get(&c.responses_503) > 0);
    assert!(c.get(&c.resets) == 1 && c.get(&c.responses_413) > 0);
    assert!(stats.retries > 0);
    assert_eq!(stats.created + stats.duplicates, DOCS as u64);
}

#[tokio::test]
async fn exhausted_retries_fail_the_object_and_a_rerun_completes_it() {
    // Every request fails: after the retry time the object is reported as failed.
    let proxy = FaultProxy::start(
        &tests::opensearch_url(),
        Faults {
            request_503_every: Some(1),
            ..Faults::default()
        },
    )
    .await;
    let index = format!("{}-2024-05", index_prefix("exhausted"));
    let object = "s3://logs/AWSLogs/111122223333/exhausted.json.gz";
    let items = make_items(object, 60, std::slice::from_ref(&index));
    let mut config = test_config(&proxy.url);
    config.retry.max_elapsed = Duration::from_millis(500);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sink_to(&config, dir.path())
        .await
        .write(items.clone())
        .await;
    assert_eq!(out.failures.len(), 1);
    let message = out.failures[0].error.to_string();
    assert!(message.starts_with(object), "{message}");
    assert!(
        message.contains("60 document(s) not loaded") && message.contains("503"),
        "{message}"
    );
    assert_eq!(out.stats.failed, 60);

    // The redelivery (straight to the server now) loads it, exactly once.
    let out = sink_to(&test_config(&tests::opensearch_url()), dir.path())
        .await
        .write(items)
        .await;
    assert!(out.is_complete());
    assert_eq!(count(&index).await, 60);
}

#[tokio::test]
async fn basic_auth_and_sigv4_headers_reach_the_server() {
    let proxy = FaultProxy::start(&tests::opensearch_url(), Faults::default()).await;
    let index = format!("{}-2024-05", index_prefix("auth"));
    let items = make_items("local/auth.json", 3, std::slice::from_ref(&index));
    let dir = tempfile::tempdir().expect("tempdir");

    let mut config = test_config(&proxy.url);
    config.auth = loader::sink::Auth::Basic {
        username: "loader".into(),
        password: "secret".into(),
    };
    let out = sink_to(&config, dir.path())
        .await
        .write(items.clone())
        .await;
    assert!(out.is_complete());
    let (auth, _) = proxy
        .counters
        .last_authorization
        .lock()
        .expect("lock")
        .clone()
        .expect("header");
    assert_eq!(auth, "Basic bG9hZGVyOnNlY3JldA==");

    // SigV4 with credentials from an AWS configuration (static test keys, no network).
    config.auth = loader::sink::Auth::SigV4 {
        service: "aoss".into(),
        region: Some("eu-west-1".into()),
    };
    let aws = aws_config::SdkConfig::builder()
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
            aws_sdk_s3::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
        ))
        .build();
    let transport = OpenSearchTransport::new(&config, Some(&aws)).expect("sigv4 transport");
    let sink = BulkSink::new(
        &config,
        Arc::new(transport),
        Arc::new(FolderQuarantine::new(dir.path().join("quarantine"))),
    );
    let out = sink.write(items).await;
    assert!(out.is_complete());
    assert_eq!(out.stats.duplicates, 3);
    let (auth, has_sha) = proxy
        .counters
        .last_authorization
        .lock()
        .expect("lock")
        .clone()
        .expect("header");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
            && auth.contains("/eu-west-1/aoss/aws4_request"),
        "{auth}"
    );
    assert!(
        has_sha,
        "x-amz-content-sha256 is required by OpenSearch Serverless"
    );
}
