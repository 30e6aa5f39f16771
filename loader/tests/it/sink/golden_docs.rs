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
    items_of_cases(&root, prefix)
}

/// The documents of every `<root>/<folder>/<case>/expected.json`.
fn items_of_cases(root: &Path, prefix: &str) -> Vec<BulkItem> {
    let folders = std::fs::read_dir(root).expect("fixtures folder").flatten();
    let expected_files = folders
        .flat_map(|folder| expected_files_of(&folder.path()))
        .collect();
    items_of(root, expected_files, prefix)
}

/// `<folder>/<case>/expected.json` of every case.
fn expected_files_of(folder: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|case| case.path().join("expected.json"))
        .filter(|file| file.is_file())
        .collect()
}

/// The documents of these `expected.json` files, named by their case below `root`.
fn items_of(
    root: &Path,
    mut expected_files: Vec<std::path::PathBuf>,
    prefix: &str,
) -> Vec<BulkItem> {
    expected_files.sort();
    let mut items = Vec::new();
    for file in expected_files {
        let expected: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("readable")).expect("JSON");
        let object = file
            .parent()
            .and_then(|p| p.strip_prefix(root).ok())
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

/// The documents made with the es-loader's own `aws.ini` and `user.ini.sample` (the golden
/// cases of `fixtures/es-loader/`) are all accepted by a cluster that `loader setup` prepared
/// with that same file.
#[tokio::test]
async fn documents_made_with_the_es_loader_files_are_accepted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/es-loader");
    for (file, cases) in [("aws.ini", "aws-ini"), ("user.ini", "user-ini")] {
        let cluster = tests::OwnOpenSearch::start();
        let http = OpenSearchTransport::new(&SinkConfig::new(&cluster.url), None).expect("client");
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).expect("es-loader file");
        let config = loader::config::Config::with_user_file(&path.display().to_string(), &text)
            .expect("config");
        let report = crate::setup::apply_config(&http, &config).await;
        assert_eq!(report.failed(), 0, "{file}: {report}");
        let items = items_of(&root, expected_files_of(&root.join(cases)), "");
        assert!(items.len() >= 10, "{file}: {} documents", items.len());
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = sink_to(&test_config(&cluster.url), dir.path()).await;
        let out = write_all_taken(&sink, dir.path(), items.clone()).await;
        assert_eq!(out.stats.created, items.len() as u64, "{file}");
    }
}
