//! TLS is always verified; an extra CA file makes a private CA trusted. The certificates in
//! `tls/` are for tests only: a CA (its key was discarded) and a server certificate for
//! 127.0.0.1 and localhost.

use super::proxy::{FaultProxy, Faults};
use super::*;

const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/sink/tls/ca.pem");
const CERT: &[u8] = include_bytes!("tls/server.pem");
const KEY: &[u8] = include_bytes!("tls/server.key");

#[tokio::test]
async fn an_unknown_certificate_is_refused_and_the_ca_file_makes_it_trusted() {
    let proxy = FaultProxy::start_tls(&tests::opensearch_url(), Faults::default(), CERT, KEY).await;
    assert!(proxy.url.starts_with("https://127.0.0.1:"));
    let index = format!("{}-2024-05", index_prefix("tls"));
    let object = "s3://logs/AWSLogs/111122223333/tls.json.gz";
    let items = make_items(object, 20, std::slice::from_ref(&index));
    let dir = tempfile::tempdir().expect("tempdir");

    // Without the CA: no request gets through, the object fails naming the certificate problem.
    let mut config = test_config(&proxy.url);
    config.retry.max_elapsed = Duration::from_millis(300);
    let out = sink_to(&config, dir.path())
        .await
        .write(items.clone())
        .await;
    assert_eq!(out.stats.created, 0);
    let message = out
        .failure_of(object)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert_eq!(proxy.counters.get(&proxy.counters.requests), 0);

    // With it: loaded.
    config.ca_file = Some(CA.into());
    let out = sink_to(&config, dir.path()).await.write(items).await;
    assert!(out.is_complete(), "{:?}", out.failures);
    assert_eq!(out.stats.created, 20);
    assert_eq!(count(&index).await, 20);
}
