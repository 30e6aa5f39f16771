//! The OpenSearch bulk sink against osmem-server, directly and through a fault-injecting proxy.

mod faults;
pub(crate) mod golden_docs;
mod osmem;
pub(crate) mod proxy;
mod s3_quarantine;
mod secret;
mod tls;

use loader::sink::{
    BulkItem, BulkSink, FolderQuarantine, OpenSearchTransport, Origin, Quarantine, SinkConfig,
};
use opensearch::http::transport::Transport;
use opensearch::{CountParts, OpenSearch};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A fresh index name prefix (lowercase, as OpenSearch requires).
fn index_prefix(what: &str) -> String {
    tests::unique_name(&format!("log-test-{what}")).to_ascii_lowercase()
}

/// `n` documents of `object`, spread round-robin over `indexes`, with ids derived from the
/// object and record position (deterministic, as the pipeline makes them).
fn make_items(object: &str, n: usize, indexes: &[String]) -> Vec<BulkItem> {
    (0..n)
        .map(|i| {
            let source = json!({
                "@timestamp": format!("2024-05-01T12:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                "event": {"module": "test", "dataset": "test.sink", "kind": "event"},
                "source": {"ip": format!("198.51.100.{}", i % 250)},
                "message": format!("record {i} of {object}: the quick brown fox jumps over the lazy dog"),
                "bytes": i,
            });
            BulkItem::new(
                indexes[i % indexes.len()].clone(),
                format!("{:016x}", fxhash(object, i)),
                serde_json::to_vec(&source).expect("serializable"),
                Origin::new(object, i as u64),
            )
        })
        .collect()
}

/// A stable id from object and position (FNV-1a; any deterministic hash does here).
fn fxhash(object: &str, i: usize) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in object.bytes().chain(i.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Settings for tests: small requests (so a few hundred documents make many), short backoff.
pub(crate) fn test_config(endpoint: &str) -> SinkConfig {
    let mut config = SinkConfig::new(endpoint);
    config.bulk_max_items = 50;
    config.retry.initial_delay = Duration::from_millis(20);
    config.retry.max_delay = Duration::from_millis(200);
    config.retry.max_elapsed = Duration::from_secs(60);
    config
}

async fn sink_with(config: &SinkConfig, quarantine: Arc<dyn Quarantine>) -> BulkSink {
    BulkSink::connect(config, quarantine)
        .await
        .expect("valid sink configuration")
}

/// A sink whose quarantine folder lives in `dir`.
pub(crate) async fn sink_to(config: &SinkConfig, dir: &std::path::Path) -> BulkSink {
    sink_with(
        config,
        Arc::new(FolderQuarantine::new(dir.join("quarantine"))),
    )
    .await
}

fn client() -> OpenSearch {
    client_at(&tests::opensearch_url())
}

pub(crate) fn client_at(url: &str) -> OpenSearch {
    OpenSearch::new(Transport::single_node(url).expect("osmem URL"))
}

/// Documents in `index` (a name or pattern), read straight from osmem (never through the
/// proxy).
pub(crate) async fn count(index: &str) -> u64 {
    count_at(&tests::opensearch_url(), index).await
}

/// Documents in `index` of the cluster at `url`.
pub(crate) async fn count_at(url: &str, index: &str) -> u64 {
    let client = client_at(url);
    let _ = client
        .indices()
        .refresh(opensearch::indices::IndicesRefreshParts::Index(&[index]))
        .send()
        .await;
    let answer: Value = client
        .count(CountParts::Index(&[index]))
        .send()
        .await
        .expect("_count request")
        .json()
        .await
        .expect("_count answer");
    answer["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count for {index}: {answer}"))
}

/// Writes `items` through `sink` (whose quarantine folder lives in `dir`) and checks that the
/// cluster took every one of them.
pub(crate) async fn write_all_taken(
    sink: &BulkSink,
    dir: &std::path::Path,
    items: Vec<BulkItem>,
) -> loader::sink::WriteOutcome {
    let out = sink.write(items).await;
    assert!(out.is_complete(), "{:?}", out.failures);
    let refused: Vec<String> = quarantined_files(dir)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    assert!(
        refused.is_empty(),
        "documents OpenSearch refused: {refused:#?}"
    );
    out
}

/// Files in the quarantine folder.
pub(crate) fn quarantined_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("quarantine"), &mut out);
    out
}
