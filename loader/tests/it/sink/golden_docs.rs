//! The reviewed golden outputs of every log type, loaded through the sink into a cluster that
//! `loader setup` prepared (as in production: without its templates, dynamic mapping refuses a
//! CloudTrail event whose `requestParameters.filter` is an object after one where it was a
//! string): every document is accepted, found with `_count` and `_search`, and loading them a
//! second and a third time adds nothing.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every document of every `loader/fixtures/*/*/expected.json`, as a bulk item whose index
/// name gets `prefix` in front unless it is empty (so runs sharing one server never collide)
/// and whose origin is the fixture case.
pub(crate) fn golden_items(prefix: &str) -> Vec<BulkItem> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut expected_files = Vec::new();
    for log_type in std::fs::read_dir(&root).expect("fixtures folder").flatten() {
        for case in std::fs::read_dir(log_type.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = case.path().join("expected.json");
            if file.is_file() {
                expected_files.push(file);
            }
        }
    }
    expected_files.sort();
    let mut items = Vec::new();
    for file in expected_files {
        let expected: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("readable")).expect("JSON");
        let object = file
            .parent()
            .and_then(|p| p.strip_prefix(&root).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let docs = expected["documents"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (record, doc) in docs.into_iter().enumerate() {
            let index = doc["_index"].as_str().expect("_index");
            let id = doc["_id"].as_str().expect("_id");
            let index = if prefix.is_empty() {
                index.to_owned()
            } else {
                format!("{prefix}-{index}")
            };
            items.push(BulkItem::new(
                index,
                id,
                serde_json::to_vec(&doc["_source"]).expect("serializable"),
                Origin::new(object.as_str(), record as u64),
            ));
        }
    }
    items
}

#[tokio::test]
async fn golden_documents_of_every_type_load_and_are_found() {
    let cluster = tests::OwnOpenSearch::start();
    let http = OpenSearchTransport::new(&SinkConfig::new(&cluster.url), None).expect("client");
    let report = crate::setup::apply(&http, None, true).await;
    assert_eq!(report.failed(), 0, "{report}");
    let items = golden_items("");
    assert!(items.len() >= 50, "golden documents found: {}", items.len());
    let mut unique: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in &items {
        unique
            .entry(item.index.to_string())
            .or_default()
            .insert(item.id.to_string());
    }
    let distinct: u64 = unique.values().map(|ids| ids.len() as u64).sum();
    let types: BTreeSet<&str> = unique
        .keys()
        .filter_map(|i| {
            i.rsplit_once('-')
                .and_then(|(rest, _)| rest.rsplit_once('-'))
        })
        .map(|(name, _)| name)
        .collect();
    assert!(types.len() >= 5, "indices of several types: {types:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&test_config(&cluster.url), dir.path()).await;
    let out = write_all_taken(&sink, dir.path(), items.clone()).await;
    assert_eq!(out.stats.created, distinct);
    assert_eq!(out.stats.duplicates, items.len() as u64 - distinct);

    for (index, ids) in &unique {
        assert_eq!(
            count_at(&cluster.url, index).await,
            ids.len() as u64,
            "{index}"
        );
        // _search finds them by id.
        let answer: Value = client_at(&cluster.url)
            .search(opensearch::SearchParts::Index(&[index]))
            .body(json!({"size": 1000, "query": {"ids": {"values": ids}}}))
            .send()
            .await
            .expect("_search")
            .json()
            .await
            .expect("_search answer");
        let found: BTreeSet<String> = answer["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| h["_id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(&found, ids, "{index}");
    }

    // Loading everything a second and a third time: all duplicates, same counts.
    let total = items.len() as u64;
    for round in [2, 3] {
        let again = sink.write(items.clone()).await;
        assert_eq!(
            (again.stats.created, again.stats.duplicates),
            (0, total),
            "load {round}"
        );
        for (index, ids) in &unique {
            assert_eq!(
                count_at(&cluster.url, index).await,
                ids.len() as u64,
                "{index} after load {round}"
            );
        }
    }
}
