//! Straight against osmem-server: documents arrive, under the given names, exactly once.

use super::*;
use opensearch::indices::IndicesCreateParts;

#[tokio::test]
async fn documents_are_found_with_count_in_the_given_indexes() {
    let prefix = index_prefix("load");
    let indexes = vec![format!("{prefix}-2024-05"), format!("{prefix}-2024-06")];
    let items = make_items("s3://logs/AWSLogs/111122223333/a.json.gz", 301, &indexes);
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&test_config(&tests::opensearch_url()), dir.path()).await;

    let out = sink.write(items.clone()).await;
    assert!(out.is_complete(), "{:?}", out.failures);
    assert_eq!(out.stats.created, 301);
    assert_eq!(
        (
            out.stats.duplicates,
            out.stats.quarantined,
            out.stats.retries
        ),
        (0, 0, 0)
    );
    assert_eq!(out.stats.requests, 7, "301 documents in requests of 50");
    assert!(out.stats.bytes_sent > 0 && out.stats.bytes_sent < out.stats.bytes_uncompressed);
    assert_eq!(count(&indexes[0]).await, 151);
    assert_eq!(count(&indexes[1]).await, 150);

    // The document is stored under its id, with its source as sent.
    let doc: Value = client()
        .get(opensearch::GetParts::IndexId(
            &indexes[1],
            items[1].id.as_str(),
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("get answer");
    assert_eq!(doc["_source"]["bytes"], 1, "{doc}");
    assert_eq!(doc["_source"]["source"]["ip"], "198.51.100.1");
    assert!(quarantined_files(dir.path()).is_empty());
}

#[tokio::test]
async fn loading_the_same_items_three_times_leaves_the_same_count() {
    let index = format!("{}-2024-05", index_prefix("thrice"));
    let items = make_items(
        "s3://logs/AWSLogs/111122223333/b.json.gz",
        120,
        std::slice::from_ref(&index),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&test_config(&tests::opensearch_url()), dir.path()).await;

    let first = sink.write(items.clone()).await;
    assert_eq!((first.stats.created, first.stats.duplicates), (120, 0));
    for round in 2..=3 {
        let again = sink.write(items.clone()).await;
        assert!(again.is_complete(), "round {round}: {:?}", again.failures);
        assert_eq!(
            (again.stats.created, again.stats.duplicates),
            (0, 120),
            "round {round}: every document is a duplicate already loaded"
        );
        assert_eq!(count(&index).await, 120, "round {round}");
    }
}

#[tokio::test]
async fn a_mapping_error_quarantines_exactly_that_document() {
    let index = format!("{}-2024-05", index_prefix("mapping"));
    client()
        .indices()
        .create(IndicesCreateParts::Index(&index))
        .body(json!({"mappings": {"properties": {"bytes": {"type": "integer"}}}}))
        .send()
        .await
        .expect("create index")
        .error_for_status_code()
        .expect("index created");
    let object = "s3://logs/AWSLogs/111122223333/c.json.gz";
    let mut items = make_items(object, 80, std::slice::from_ref(&index));
    let bad_id = items[37].id.clone();
    items[37].source = serde_json::to_vec(&json!({"bytes": "not a number", "message": "bad"}))
        .expect("serializable")
        .into();
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&test_config(&tests::opensearch_url()), dir.path()).await;

    let out = sink.write(items).await;
    assert!(
        out.is_complete(),
        "a quarantined document does not fail its object"
    );
    assert_eq!((out.stats.created, out.stats.quarantined), (79, 1));
    assert_eq!(count(&index).await, 79);

    let files = quarantined_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0],
        dir.path()
            .join("quarantine")
            .join(&index)
            .join(format!("{bad_id}.json"))
    );
    let entry: Value =
        serde_json::from_slice(&std::fs::read(&files[0]).expect("entry")).expect("entry JSON");
    assert_eq!(entry["object"], object);
    assert_eq!(entry["record"], 37);
    assert_eq!(entry["status"], 400);
    assert_eq!(entry["error"]["type"], "mapper_parsing_exception");
    assert_eq!(entry["document"]["bytes"], "not a number");

    // Loading the object again: the good documents are duplicates, the bad one is quarantined
    // again (same file), nothing fails.
    let mut again = make_items(object, 80, std::slice::from_ref(&index));
    again[37].source = serde_json::to_vec(&json!({"bytes": "not a number", "message": "bad"}))
        .expect("serializable")
        .into();
    let out = sink.write(again).await;
    assert_eq!((out.stats.duplicates, out.stats.quarantined), (79, 1));
    assert_eq!(quarantined_files(dir.path()).len(), 1);
}
