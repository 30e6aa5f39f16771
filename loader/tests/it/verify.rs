//! `loader verify` and its store: what it says of documents missing, partial and unexplained,
//! over a cluster and a local index, and its paging of the cluster, with and without a point
//! in time.

use crate::cli::{cloudtrail_key, loader, run_async};
use crate::drills::{RECORDS, load_to, trail_objects, verify};
use futures::future::BoxFuture;
use loader::setup::Http;
use loader::sink::{HttpReply, OpenSearchTransport, SendError, SinkConfig};
use loader::verify::{DocumentStore, OpenSearchStore};
use opensearch::http::Method;

/// `loader verify` names what it finds wrong: a document deleted, one no object explains,
/// and reads a local index as it reads a cluster.
#[tokio::test]
async fn verify_names_missing_partial_and_unexplained_documents() {
    let cluster = tests::OwnOpenSearch::start();
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let total = trail_objects(&data, "verify", 3);
    let data_arg = data.to_str().expect("utf-8").to_owned();

    // Nothing loaded yet: every object is missing.
    let (code, text) = verify(&cluster.url, &[&data_arg], "AWSLogs/").await;
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.matches("missing     ").count(), 3, "{text}");

    let reports = work.path().join("reports");
    assert_eq!(load_to(&cluster.url, &data, &reports).await, Some(0));
    let (code, text) = verify(&cluster.url, &[&data_arg], "AWSLogs/").await;
    assert_eq!(code, Some(0), "{text}");

    // One document deleted, one forged under a key of the prefix.
    let client = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let request = client
            .request(method, format!("{}{path}", cluster.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        async move {
            let answer = request.send().await.expect("request");
            serde_json::from_slice::<serde_json::Value>(&answer.bytes().await.expect("answer"))
                .expect("JSON answer")
        }
    };
    let hit = send(
        reqwest::Method::POST,
        "/log-*/_search".to_owned(),
        serde_json::json!({"size": 1, "_source": false, "query": {"match_all": {}}}),
    )
    .await;
    let index = hit["hits"]["hits"][0]["_index"]
        .as_str()
        .expect("index")
        .to_owned();
    let id = hit["hits"]["hits"][0]["_id"]
        .as_str()
        .expect("id")
        .to_owned();
    send(
        reqwest::Method::DELETE,
        format!("/{index}/_doc/{id}?refresh=true"),
        serde_json::Value::Null,
    )
    .await;
    send(
        reqwest::Method::PUT,
        format!("/{index}/_doc/forged?refresh=true"),
        serde_json::json!({"@log_s3key": "AWSLogs/999999999999/forged.json.gz"}),
    )
    .await;
    let (code, text) = verify(&cluster.url, &[&data_arg], "AWSLogs/").await;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "{} of {RECORDS} documents loaded, 1 missing (e.g. _id {id})",
            RECORDS - 1
        )),
        "{text}"
    );
    assert!(
        text.contains("unexplained AWSLogs/999999999999/forged.json.gz: 1 document(s)"),
        "{text}"
    );
    assert!(text.contains(&format!("documents: {total} expected, {} found", total - 1)));

    // The same over a local index.
    let index_dir = work.path().join("index");
    let mut cmd = loader();
    cmd.arg("load").arg(&data).arg("--index").arg(&index_dir);
    assert_eq!(run_async(cmd).await.status.code(), Some(0));
    let mut cmd = loader();
    cmd.arg("verify").arg(&data).arg("--index").arg(&index_dir);
    let out = run_async(cmd).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("documents: {total} expected, {total} found")));
    let removed = data.join(cloudtrail_key("verify_001"));
    std::fs::remove_file(&removed).expect("remove");
    let mut cmd = loader();
    cmd.arg("verify")
        .arg(&data)
        .arg("--index")
        .arg(&index_dir)
        .args(["--scope", "AWSLogs/"]);
    let out = run_async(cmd).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "unexplained {}: {RECORDS} document(s)",
            cloudtrail_key("verify_001")
        )),
        "{text}"
    );
}

/// The real cluster, except that it has no point in time (as before OpenSearch 2.4).
struct NoPointInTime(OpenSearchTransport);

impl Http for NoPointInTime {
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        query: &'a [(&'a str, &'a str)],
        body: Option<Vec<u8>>,
    ) -> BoxFuture<'a, Result<HttpReply, SendError>> {
        Box::pin(async move {
            if path.contains("point_in_time")
                || body
                    .as_ref()
                    .is_some_and(|b| String::from_utf8_lossy(b).contains("\"pit\""))
            {
                return Ok(HttpReply {
                    status: 400,
                    body: bytes::Bytes::from_static(b"{\"error\":\"no point in time here\"}"),
                });
            }
            self.0.request(method, path, query, body).await
        })
    }
}

#[tokio::test]
async fn the_store_pages_ids_and_keys_with_and_without_a_point_in_time() {
    let cluster = tests::OwnOpenSearch::start();
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    trail_objects(&data, "paging", 3);
    let reports = work.path().join("reports");
    assert_eq!(load_to(&cluster.url, &data, &reports).await, Some(0));
    let _ = reqwest::Client::new()
        .post(format!("{}/_refresh", cluster.url))
        .send()
        .await;
    let transport =
        || OpenSearchTransport::new(&SinkConfig::new(cluster.url.clone()), None).expect("client");
    let key = cloudtrail_key("paging_001");
    let with = OpenSearchStore::open(transport(), "log-*")
        .await
        .expect("store")
        .with_page_size(2);
    assert!(with.has_point_in_time());
    let without = OpenSearchStore::open(NoPointInTime(transport()), "log-*")
        .await
        .expect("store")
        .with_page_size(2);
    assert!(!without.has_point_in_time());
    let stores: [&dyn DocumentStore; 2] = [&with, &without];
    for store in stores {
        let ids = store.ids_of(&key).await.expect("ids");
        assert_eq!(ids.len(), RECORDS, "every id of the object, over 25 pages");
        let some: Vec<String> = ids
            .iter()
            .take(3)
            .cloned()
            .chain(["absent".to_owned()])
            .collect();
        assert_eq!(store.held(&some).await.expect("held").len(), 3);
        let keys = store.keys_under("AWSLogs/").await.expect("keys");
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert!(keys.iter().all(|(_, n)| *n == RECORDS as u64), "{keys:?}");
        assert!(
            store
                .keys_under("AWSLogs/none/")
                .await
                .expect("keys")
                .is_empty()
        );
    }
    with.close().await;
}
