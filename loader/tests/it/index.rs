//! The local index as a responder uses it: `loader load ... --index DIR` and `loader search`
//! from the built binary (idempotent reloads, a run killed with SIGKILL and resumed, folders
//! that are no index, two writers), and the same queries answered as osmem-server answers them
//! on the golden documents.

use crate::sink::golden_docs::golden_items;
use loader::deliver::DocumentSink;
use loader::index::search::{Request, search};
use loader::index::{IndexError, IndexSink, LocalIndex, field_table};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn loader(args: &[&str]) -> Output {
    let state = tempfile::tempdir().expect("state dir");
    Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("LOADER_STATE_DIR", state.path())
        .output()
        .expect("the loader runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `objects` gzip CloudTrail objects of `records` records each, with unique event ids.
fn cloudtrail_objects(dir: &Path, objects: usize, records: usize) -> usize {
    let folder = dir.join("AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01");
    std::fs::create_dir_all(&folder).expect("folder");
    for o in 0..objects {
        let events: Vec<String> = (0..records)
            .map(|r| {
                format!(
                    r#"{{"eventVersion":"1.09","eventTime":"2024-05-01T{:02}:{:02}:{:02}Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.{}","eventID":"ev-{o}-{r}","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","userName":"user{}"}}}}"#,
                    o % 24,
                    r / 60 % 60,
                    r % 60,
                    r % 250,
                    o % 7
                )
            })
            .collect();
        let body = format!(r#"{{"Records":[{}]}}"#, events.join(","));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body.as_bytes()).expect("gzip");
        std::fs::write(
            folder.join(format!(
                "111122223333_CloudTrail_us-east-1_20240501T{o:04}Z_{o:016x}.json.gz"
            )),
            gz.finish().expect("gzip"),
        )
        .expect("object");
    }
    objects * records
}

fn count(index: &Path, query: &str) -> u64 {
    let out = loader(&["search", p(index), query, "--count"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().parse().expect("a count")
}

#[test]
fn loading_twice_leaves_one_copy_and_search_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("bucket");
    let expected = cloudtrail_objects(&objects, 5, 40) as u64;
    let index = dir.path().join("idx");
    for round in 1..=2 {
        let out = loader(&["load", p(&objects), "--index", p(&index)]);
        assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "no NDJSON with --index");
        assert_eq!(count(&index, "*"), expected, "round {round}");
    }
    // The reports are with the index, not in the current folder.
    assert!(index.join("reports/loader-load.finish.log").is_file());
    assert_eq!(count(&index, "eventID:ev-3-7"), 1);
    assert_eq!(
        count(&index, "user.name:user3 AND source.ip:198.51.100.0/24"),
        40
    );
    let out = loader(&[
        "search",
        p(&index),
        "eventID:ev-0-*",
        "--fields",
        "@timestamp,eventID,source.ip",
        "--size",
        "3",
    ]);
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("@timestamp") && lines[0].contains("source.ip"));
    // Newest first: the last record of object 0 is 00:00:39.
    assert!(lines[1].contains("2024-05-01T00:00:39.000Z"), "{table}");
    assert!(
        text(&out.stderr).contains("40 documents match"),
        "{}",
        text(&out.stderr)
    );
    let out = loader(&["search", p(&index), "*", "--top", "user.name", "--json"]);
    let top: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(top[0], json!({"value": "user0", "count": 40}));
    let out = loader(&["search", p(&index), "eventID:ev-1-1", "--ndjson"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one document");
    assert_eq!(doc["_source"]["eventID"], "ev-1-1");
    assert_eq!(doc["_index"], "log-aws-cloudtrail-2024-05");
    let out = loader(&["search", p(&index), "source.ip:[nonsense TO 1]"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not an IP address"),
        "{}",
        text(&out.stderr)
    );
}

/// A load killed with SIGKILL in the middle, then resumed: every document exactly once, and
/// the objects committed before the kill are not loaded again.
#[test]
fn a_load_killed_midway_and_resumed_has_every_document_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("bucket");
    let expected = cloudtrail_objects(&objects, 100, 300) as u64;
    let index = dir.path().join("idx");
    let finished = index.join("reports/loader-load.finish.log");
    let state = tempfile::tempdir().expect("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loader"))
        .args([
            "load",
            p(&objects),
            "--index",
            p(&index),
            "--concurrency",
            "1",
            "--commit-every",
            "5",
        ])
        .env("RUST_LOG", "warn")
        .env("LOADER_STATE_DIR", state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the loader starts");
    // Kill it once some commits happened and before the end.
    let started = std::time::Instant::now();
    loop {
        let done = std::fs::read_to_string(&finished)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if done >= 10 || started.elapsed() > std::time::Duration::from_secs(120) {
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().expect("killed");
    let done = std::fs::read_to_string(&finished)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    assert!(
        status.code().is_none() && done < 100,
        "the run must be killed midway (finished {done}, status {status})"
    );
    let out = loader(&["load", p(&objects), "--index", p(&index), "--resume"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stderr);
    assert!(
        summary.contains(&format!("resumed: {done} objects")),
        "{summary}"
    );
    assert_eq!(count(&index, "*"), expected);
    let ids: BTreeSet<String> = (0..100)
        .flat_map(|o| (0..300).map(move |r| format!("ev-{o}-{r}")))
        .collect();
    assert_eq!(ids.len() as u64, expected);
    assert_eq!(count(&index, "eventID:ev-99-299"), 1);
    assert_eq!(
        std::fs::read_to_string(&finished)
            .expect("finished")
            .lines()
            .collect::<BTreeSet<_>>()
            .len(),
        100
    );
}

#[test]
fn a_folder_that_is_no_index_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("bucket");
    cloudtrail_objects(&objects, 1, 2);
    let foreign = dir.path().join("photos");
    std::fs::create_dir_all(&foreign).expect("folder");
    std::fs::write(foreign.join("cat.jpg"), b"not an index").expect("file");
    let out = loader(&["load", p(&objects), "--index", p(&foreign)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("holds no index")
            && text(&out.stderr).contains("nothing was written"),
        "{}",
        text(&out.stderr)
    );
    let entries: Vec<_> = std::fs::read_dir(&foreign).expect("read").collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        std::fs::read(foreign.join("cat.jpg")).expect("kept"),
        b"not an index"
    );
    let out = loader(&["search", p(&foreign), "*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no index here"),
        "{}",
        text(&out.stderr)
    );
    // A broken index file: a clear error, nothing changed.
    let index = dir.path().join("idx");
    assert!(
        loader(&["load", p(&objects), "--index", p(&index)])
            .status
            .success()
    );
    std::fs::write(index.join("meta.json"), b"{ broken").expect("corrupt");
    let out = loader(&["search", p(&index), "*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot be opened"),
        "{}",
        text(&out.stderr)
    );
    let out = loader(&["load", p(&objects), "--index", p(&index)]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read(index.join("meta.json")).expect("kept"),
        b"{ broken"
    );
}

#[test]
fn a_second_writer_is_refused_and_searches_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("bucket");
    let expected = cloudtrail_objects(&objects, 2, 10) as u64;
    let index = dir.path().join("idx");
    assert!(
        loader(&["load", p(&objects), "--index", p(&index)])
            .status
            .success()
    );
    let content = loader::content::Content::bundled().expect("content");
    let opened = LocalIndex::open(&index, field_table(&content)).expect("open");
    let writer = IndexSink::new(&opened).expect("first writer");
    let out = loader(&["load", p(&objects), "--index", p(&index)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("another loader is writing this index"),
        "{}",
        text(&out.stderr)
    );
    match IndexSink::new(&opened) {
        Err(IndexError::Busy { .. }) => {}
        other => panic!("a second writer in one process: {:?}", other.err()),
    }
    assert_eq!(count(&index, "*"), expected);
    drop(writer);
    assert!(
        loader(&["load", p(&objects), "--index", p(&index)])
            .status
            .success()
    );
    assert_eq!(count(&index, "*"), expected);
}

/// The same query strings, on the golden documents of every type, find the same documents in
/// the local index as in osmem-server (templates of `loader setup`, `query_string` queries).
#[tokio::test]
async fn queries_find_what_opensearch_finds_on_the_golden_documents() {
    let queries = [
        "eventName:ConsoleLogin",
        "event.action:ConsoleLogin OR eventName:StopLogging",
        "event.outcome:failure AND NOT @log_type:alerts",
        // OpenSearch reads an unescaped `/` as a regular expression; here both forms work.
        "source.ip:10.0.0.0\\/8",
        "source.ip:\"203.0.113.0/24\"",
        "destination.port:[1 TO 1024]",
        "destination.port:>=1024",
        "user.name:adm*",
        "user.name:/ro.t/",
        "_exists_:user.name",
        "_exists_:requestParameters.bucketName",
        "requestParameters.bucketName:*",
        "message:password",
        "message:\"Failed password\"",
        "@timestamp:[2024-05-01 TO 2024-05-01]",
        "@timestamp:{2024-05-01 TO *]",
        "@timestamp:<2024-05-02",
        "(event.outcome:success OR event.outcome:failure) AND cloud.account.id:111122223333",
        "-event.kind:event",
        "aws.cloudtrail.user_identity.type:IAMUser",
        "network.transport:tcp AND source.port:>1000",
        "rule.name:*",
        "@log_type:linux_secure AND event.action:ssh_login",
    ];
    let cluster = tests::OwnOpenSearch::start();
    let http =
        loader::sink::OpenSearchTransport::new(&loader::sink::SinkConfig::new(&cluster.url), None)
            .expect("client");
    let report = crate::setup::apply(&http, None, true).await;
    assert_eq!(report.failed(), 0, "{report}");
    let items = golden_items("");
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = crate::sink::sink_to(&crate::sink::test_config(&cluster.url), dir.path()).await;
    crate::sink::write_all_taken(&sink, dir.path(), items.clone()).await;

    let content = loader::content::Content::bundled().expect("content");
    let local =
        LocalIndex::open_or_create(&dir.path().join("idx"), &field_table(&content)).expect("index");
    let writer = IndexSink::new(&local).expect("writer");
    let out = writer.write(items).await;
    assert!(out.is_complete(), "{:?}", out.failures);
    writer.commit().await.expect("commit");

    let client = crate::sink::client_at(&cluster.url);
    let mut problems = Vec::new();
    for query in queries {
        let _ = client
            .indices()
            .refresh(opensearch::indices::IndicesRefreshParts::None)
            .send()
            .await;
        let answer: Value = client
            .search(opensearch::SearchParts::Index(&["log-*", "alert-*"]))
            .body(json!({"size": 10000, "query": {"query_string": {"query": query}}}))
            .send()
            .await
            .expect("_search")
            .json()
            .await
            .expect("answer");
        let theirs: BTreeSet<String> = answer["hits"]["hits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| Some(format!("{}/{}", h["_index"].as_str()?, h["_id"].as_str()?)))
            .collect();
        let found = search(
            &local,
            &Request {
                query: query.to_owned(),
                from: None,
                to: None,
                size: 10_000,
                page: 1,
                top: None,
                now: chrono::Utc::now(),
            },
        )
        .unwrap_or_else(|e| panic!("{query}: {e}"));
        let ours: BTreeSet<String> = found
            .hits
            .iter()
            .map(|h| format!("{}/{}", h.index, h.id))
            .collect();
        if theirs != ours {
            problems.push(format!(
                "{query}: OpenSearch {} documents, the local index {}; only OpenSearch: {:?}; only local: {:?}",
                theirs.len(),
                ours.len(),
                theirs.difference(&ours).take(3).collect::<Vec<_>>(),
                ours.difference(&theirs).take(3).collect::<Vec<_>>()
            ));
        } else if theirs.is_empty() {
            problems.push(format!("{query}: finds nothing in either (a weak case)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `loader detect ... --index DIR` writes its alerts into the index, once however often it
/// runs.
#[test]
fn detect_writes_its_alerts_into_the_index_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = dir.path().join("idx");
    let input = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cloudtrail/account-trail-failures-and-logins");
    let mut printed = 0;
    for round in 1..=2 {
        let out = loader(&[
            "detect",
            p(&input),
            "--format",
            "json",
            "--index",
            p(&index),
        ]);
        assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        printed = text(&out.stdout).lines().count() as u64;
        assert!(printed > 0, "the fixtures raise alerts");
        assert!(
            text(&out.stderr).contains("alerts written to"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&index, "@log_type:alerts"), printed);
}
