//! Crash and fault drills, end to end with the built binary: a load killed with SIGKILL and
//! resumed, an OpenSearch endpoint gone for 30 s mid-load, S3 GetObject failing and stalling
//! (through the fault proxy in front of moto). Each ends with `loader verify` proving every
//! document is in the cluster exactly once, and with the cluster's own count.

use crate::cli::{cloudtrail_key, cloudtrail_object_of, lines, loader, run_async};
use crate::sink::count_at;
use crate::sink::proxy::{FaultProxy, Faults};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) const RECORDS: usize = 50;

/// `n` CloudTrail objects laid out like the bucket below `dir`; the documents they make.
pub(crate) fn trail_objects(dir: &Path, tag: &str, n: usize) -> u64 {
    for i in 0..n {
        let path = dir.join(cloudtrail_key(&format!("{tag}_{i:03}")));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, cloudtrail_object_of(&format!("{tag}-{i}"), RECORDS))
            .expect("object");
    }
    (n * RECORDS) as u64
}

/// `loader verify` of `sources` against `url`: its exit code and output.
pub(crate) async fn verify(url: &str, sources: &[&str], scope: &str) -> (Option<i32>, String) {
    let mut cmd = loader();
    cmd.arg("verify")
        .args(sources)
        .args(["--opensearch", url, "--scope", scope]);
    let out = run_async(cmd).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Every document of the objects of `source` is in the cluster once: `loader verify` says so,
/// and the cluster holds no more documents than the objects' records.
async fn loaded_once(url: &str, source: &str, total: u64) {
    let (code, text) = verify(url, &[source], "AWSLogs/").await;
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("documents: {total} expected, {total} found")),
        "{text}"
    );
    assert_eq!(count_at(url, "log-*").await, total);
}

/// `loader load SOURCE --opensearch URL`, reports in `reports`: its exit code.
pub(crate) async fn load_to(url: &str, source: &Path, reports: &Path) -> Option<i32> {
    let mut cmd = loader();
    cmd.arg("load")
        .arg(source)
        .args(["--opensearch", url])
        .arg("--report-dir")
        .arg(reports);
    run_async(cmd).await.status.code()
}

/// Lines of a report file, or none before it exists.
fn finished(path: &Path) -> usize {
    if path.exists() { lines(path).len() } else { 0 }
}

#[tokio::test]
async fn a_load_killed_with_sigkill_and_resumed_leaves_every_document_exactly_once() {
    let cluster = tests::OwnOpenSearch::start();
    // A slow cluster, so the kill lands in the middle of the load.
    let proxy = FaultProxy::start(
        &cluster.url,
        Faults {
            delay: Duration::from_millis(40),
            ..Faults::default()
        },
    )
    .await;
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let total = trail_objects(&data, "kill", 100);
    let reports = work.path().join("reports");
    let finish_log = reports.join("loader-load.finish.log");

    let mut cmd = loader();
    cmd.arg("load")
        .arg(&data)
        .args(["--opensearch", &proxy.url, "--concurrency", "2"])
        .arg("--report-dir")
        .arg(&reports)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("the loader starts");
    let started = Instant::now();
    while finished(&finish_log) < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the load finished no 10 objects in 2 minutes"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the load ended before it was killed: {status}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let done_before = finished(&finish_log);
    assert!(
        done_before < 100,
        "the kill came after the end ({done_before} finished)"
    );

    // The rerun goes on from the finished list; what the killed run had sent is found again.
    let mut cmd = loader();
    cmd.arg("load")
        .arg(&data)
        .args(["--opensearch", &cluster.url, "--resume"])
        .arg("--report-dir")
        .arg(&reports);
    let out = run_async(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(&format!("resumed: {done_before} objects")),
        "{summary}"
    );
    assert_eq!(lines(&finish_log).len(), 100);

    loaded_once(&cluster.url, data.to_str().expect("utf-8"), total).await;
}

#[tokio::test]
async fn opensearch_gone_for_30_seconds_mid_load_loses_nothing_and_adds_nothing() {
    let cluster = tests::OwnOpenSearch::start();
    let down = Arc::new(AtomicBool::new(false));
    let proxy = FaultProxy::start(
        &cluster.url,
        Faults {
            delay: Duration::from_millis(30),
            down: Some(Arc::clone(&down)),
            ..Faults::default()
        },
    )
    .await;
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let total = trail_objects(&data, "outage", 60);
    let reports = work.path().join("reports");
    let finish_log = reports.join("loader-load.finish.log");

    let mut cmd = loader();
    cmd.env("OPENSEARCH_RETRY_SECONDS", "8")
        .arg("load")
        .arg(&data)
        .args(["--opensearch", &proxy.url, "--concurrency", "2"])
        .arg("--report-dir")
        .arg(&reports);
    let run = tokio::spawn(run_async(cmd));
    let started = Instant::now();
    while finished(&finish_log) < 5 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    down.store(true, Ordering::SeqCst);
    let finished_at_outage = finished(&finish_log);
    tokio::time::sleep(Duration::from_secs(30)).await;
    down.store(false, Ordering::SeqCst);
    let out = run.await.expect("the load");
    let c = &proxy.counters;
    assert!(c.get(&c.refused_down) > 0, "the outage refused nothing");
    assert!(finished_at_outage < 60, "the outage came after the end");

    // Objects the outage failed are in the failed list; a rerun of it completes the load.
    if out.status.code() != Some(0) {
        assert_eq!(out.status.code(), Some(1));
        let failed = reports.join("loader-load.error.log");
        assert!(!lines(&failed).is_empty());
        let mut cmd = loader();
        cmd.arg("load")
            .arg("--list")
            .arg(&failed)
            .args(["--opensearch", &cluster.url])
            .arg("--report-dir")
            .arg(work.path().join("rerun"));
        let out = run_async(cmd).await;
        assert_eq!(out.status.code(), Some(0));
    }
    loaded_once(&cluster.url, data.to_str().expect("utf-8"), total).await;
}

#[tokio::test]
async fn s3_get_object_failing_and_stalling_fails_those_objects_for_the_rerun() {
    let cluster = tests::OwnOpenSearch::start();
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = tests::unique_name("drill-s3").to_ascii_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let names: Vec<String> = (0..10)
        .map(|i| match i {
            0..=1 => format!("fail-{i}"),
            2 => "stall-2".to_owned(),
            _ => format!("fine-{i}"),
        })
        .collect();
    for name in &names {
        s3.put_object()
            .bucket(&bucket)
            .key(cloudtrail_key(name))
            .body(cloudtrail_object_of(name, RECORDS).into())
            .send()
            .await
            .expect("PutObject");
    }
    let total = (names.len() * RECORDS) as u64;
    let proxy = FaultProxy::start(
        &tests::moto_endpoint(),
        Faults {
            fail_paths: vec!["fail-".to_owned()],
            stall_paths: vec!["stall-".to_owned()],
            stall_for: Duration::from_secs(30),
            ..Faults::default()
        },
    )
    .await;
    let work = tempfile::tempdir().expect("tempdir");
    let reports = work.path().join("reports");
    let prefix = format!("s3://{bucket}/AWSLogs/");

    let mut cmd = loader();
    cmd.env("AWS_ENDPOINT_URL", &proxy.url)
        .env("S3_TIMEOUT_SECONDS", "3")
        .arg("load")
        .arg(&prefix)
        .args(["--opensearch", &cluster.url])
        .arg("--report-dir")
        .arg(&reports);
    let out = run_async(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    let failed = lines(&reports.join("loader-load.error.log"));
    let mut failed_names: Vec<&str> = names
        .iter()
        .filter(|n| failed.iter().any(|l| l.contains(n.as_str())))
        .map(String::as_str)
        .collect();
    failed_names.sort_unstable();
    assert_eq!(failed_names, ["fail-0", "fail-1", "stall-2"], "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|l| l.starts_with(&format!("s3://{bucket}/"))),
        "{failed:?}"
    );
    let debug = crate::cli::read(&reports.join("loader-load.error_debug.log"));
    assert!(debug.contains("S3_TIMEOUT_SECONDS"), "{debug}");
    let c = &proxy.counters;
    assert!(c.get(&c.responses_500) >= 2 && c.get(&c.stalls) >= 1);

    // Verify says which objects are missing before the rerun, and nothing after it.
    let (code, text) = verify(&cluster.url, &[&prefix], "AWSLogs/").await;
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.matches("missing     s3://").count(), 3, "{text}");

    let mut cmd = loader();
    cmd.arg("load")
        .arg("--list")
        .arg(reports.join("loader-load.error.log"))
        .args(["--opensearch", &cluster.url])
        .arg("--report-dir")
        .arg(work.path().join("rerun"));
    let out = run_async(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    loaded_once(&cluster.url, &prefix, total).await;
}
