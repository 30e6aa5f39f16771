//! `loader load` as users run it: the built binary against moto (S3, SQS) and osmem-server.

use crate::sink::count;
use flate2::{Compression, write::GzEncoder};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const RECORDS: usize = 20;

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// A CloudTrail object of `RECORDS` records whose event ids are unique to `tag`.
fn cloudtrail_object(tag: &str) -> Vec<u8> {
    cloudtrail_object_of(tag, RECORDS)
}

/// A CloudTrail object of `n` records whose event ids are unique to `tag`.
pub(crate) fn cloudtrail_object_of(tag: &str, n: usize) -> Vec<u8> {
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventVersion":"1.09","eventTime":"2024-05-01T00:00:{i:02}Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.{i}","eventID":"{tag}-{i}","recipientAccountId":"111122223333","userIdentity":{{"type":"IAMUser","userName":"alice"}}}}"#
            )
        })
        .collect();
    gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes())
}

pub(crate) fn cloudtrail_key(name: &str) -> String {
    format!(
        "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_{name}.json.gz"
    )
}

/// A user configuration that sends CloudTrail to an index of this test alone.
fn user_config(dir: &Path, index: &str) -> PathBuf {
    let path = dir.join("user.ini");
    std::fs::write(&path, format!("[cloudtrail]\nindex_name = {index}\n")).expect("user.ini");
    path
}

/// The built loader with the AWS settings of the test servers.
pub(crate) fn loader() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loader"));
    cmd.env("AWS_ENDPOINT_URL", tests::moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("OPENSEARCH_ENDPOINT")
        .env_remove("OPENSEARCH_AUTH")
        .env_remove("OPENSEARCH_SECRET_ARN")
        .env_remove("OPENSEARCH_USERNAME")
        .env_remove("OPENSEARCH_PASSWORD")
        .env_remove("ORGANIZATION_ID")
        .env("RUST_LOG", "warn");
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the loader binary runs");
    eprintln!(
        "loader exited with {:?}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_owned).collect()
}

async fn new_bucket(s3: &aws_sdk_s3::Client, what: &str) -> String {
    let bucket = tests::unique_name(what).to_ascii_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    bucket
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put object");
}

#[tokio::test]
async fn s3_prefix_run_writes_the_failed_list_and_a_rerun_of_it_loads_the_fixed_object() {
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = new_bucket(&s3, "cli-prefix").await;
    let index = tests::unique_name("log-test-cli").to_ascii_lowercase();
    let work = tempfile::tempdir().expect("tempdir");
    let user = user_config(work.path(), &index);

    let good = [cloudtrail_key("a"), cloudtrail_key("b")];
    for (i, key) in good.iter().enumerate() {
        put(&s3, &bucket, key, cloudtrail_object(&format!("good{i}"))).await;
    }
    // A key with a space, cut short: gzip that ends in the middle.
    let bad_key = cloudtrail_key("c with space");
    let full = cloudtrail_object("fixed");
    put(&s3, &bucket, &bad_key, full[..full.len() / 2].to_vec()).await;
    // No log type claims it: skipped, which counts as finished.
    put(&s3, &bucket, "AWSLogs/notes/readme.txt", b"hello".to_vec()).await;

    let first = work.path().join("first");
    let out = run(loader()
        .args(["load", &format!("s3://{bucket}/AWSLogs/")])
        .args(["--opensearch", &tests::opensearch_url()])
        .arg("--config")
        .arg(&user)
        .arg("--report-dir")
        .arg(&first)
        .args(["--concurrency", "2"]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed object makes exit code 1"
    );
    let failed_list = first.join("loader-load.error.log");
    assert_eq!(lines(&failed_list), [format!("s3://{bucket}/{bad_key}")]);
    let mut finished = lines(&first.join("loader-load.finish.log"));
    finished.sort();
    let mut expected: Vec<String> = good
        .iter()
        .chain(std::iter::once(&"AWSLogs/notes/readme.txt".to_owned()))
        .map(|k| format!("s3://{bucket}/{k}"))
        .collect();
    expected.sort();
    assert_eq!(finished, expected);
    let debug = lines(&first.join("loader-load.error_debug.log"));
    assert_eq!(debug.len(), 1, "{debug:?}");
    let entry: Value = serde_json::from_str(&debug[0]).expect("debug line is JSON");
    assert_eq!(entry["object"], format!("s3://{bucket}/{bad_key}"));
    assert!(
        entry["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{entry}"
    );
    assert!(entry["time"].is_string(), "{entry}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("objects finished: 3, failed: 1"),
        "{stderr}"
    );

    // The object is fixed; the failed list loads exactly it.
    put(&s3, &bucket, &bad_key, full).await;
    let second = work.path().join("second");
    let out = run(loader()
        .args(["load", "--list"])
        .arg(&failed_list)
        .args(["--opensearch", &tests::opensearch_url()])
        .arg("--config")
        .arg(&user)
        .arg("--report-dir")
        .arg(&second));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        lines(&second.join("loader-load.error.log.finish.log")),
        [format!("s3://{bucket}/{bad_key}")]
    );
    assert!(read(&second.join("loader-load.error.log.error.log")).is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("objects finished: 1, failed: 0"),
        "{stderr}"
    );
    assert_eq!(count(&format!("{index}-*")).await, 3 * RECORDS as u64);

    // Loading everything again adds nothing: the ids are deterministic.
    let third = work.path().join("third");
    let out = run(loader()
        .args(["load", &format!("s3://{bucket}/AWSLogs/")])
        .args(["--opensearch", &tests::opensearch_url()])
        .arg("--config")
        .arg(&user)
        .arg("--report-dir")
        .arg(&third));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("duplicates {}", 3 * RECORDS)),
        "{stderr}"
    );
    assert_eq!(count(&format!("{index}-*")).await, 3 * RECORDS as u64);
    assert_eq!(count(&format!("{index}-2024-05")).await, 3 * RECORDS as u64);
}

#[tokio::test]
async fn a_list_in_aws_s3_ls_format_with_a_bucket_loads_to_ndjson() {
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = new_bucket(&s3, "cli-list").await;
    let keys = [cloudtrail_key("one"), cloudtrail_key("two words")];
    for (i, key) in keys.iter().enumerate() {
        put(&s3, &bucket, key, cloudtrail_object(&format!("list{i}"))).await;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let list = work.path().join("keys.txt");
    std::fs::write(
        &list,
        format!(
            "2024-05-01 12:00:00       1234 {}\n\n2024-05-01 12:00:01     987654 {}\n",
            keys[0], keys[1]
        ),
    )
    .expect("list");
    let ndjson = work.path().join("out.ndjson");
    let out = run(loader()
        .args(["load", "--list"])
        .arg(&list)
        .args(["--bucket", &bucket, "--bulk", "--out"])
        .arg(&ndjson));
    assert_eq!(out.status.code(), Some(0));
    let text = read(&ndjson);
    let creates = text
        .lines()
        .filter(|l| l.starts_with(r#"{"create":"#))
        .count();
    assert_eq!(creates, 2 * RECORDS);
    // The report files sit next to the list, named after it.
    let mut finished = lines(&work.path().join("keys.txt.finish.log"));
    finished.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| format!("s3://{bucket}/{k}")).collect();
    expected.sort();
    assert_eq!(finished, expected);
    assert!(read(&work.path().join("keys.txt.error.log")).is_empty());

    // A key that does not exist fails, and the run says so in its exit code.
    std::fs::write(&list, format!("{}\n", cloudtrail_key("missing"))).expect("list");
    let out = run(loader()
        .args(["load", "--list"])
        .arg(&list)
        .args(["--bucket", &bucket, "--out"])
        .arg(&ndjson));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        lines(&work.path().join("keys.txt.error.log")),
        [format!("s3://{bucket}/{}", cloudtrail_key("missing"))]
    );
}

/// Messages still in the queue, visible or being handled.
async fn messages_left(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|name| {
        attrs
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name:?} in {attrs:?}"))
    })
    .sum()
}

#[tokio::test]
async fn draining_a_queue_deletes_the_loaded_messages_and_keeps_the_broken_ones() {
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let tests::NotifiedBucket {
        bucket,
        queue_name,
        queue_url,
    } = tests::notified_bucket(&s3, &sqs, "cli-queue").await;
    let index = tests::unique_name("log-test-cli-queue").to_ascii_lowercase();
    let work = tempfile::tempdir().expect("tempdir");
    let user = user_config(work.path(), &index);

    // Keys with a space and a `+`, which notifications encode.
    let good = [cloudtrail_key("q one"), cloudtrail_key("q+two")];
    for (i, key) in good.iter().enumerate() {
        put(&s3, &bucket, key, cloudtrail_object(&format!("queue{i}"))).await;
    }
    let bad_key = cloudtrail_key("q three");
    let full = cloudtrail_object("queue-bad");
    put(&s3, &bucket, &bad_key, full[..full.len() / 2].to_vec()).await;
    // A message that is no event at all: reported and kept.
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body("not an event")
        .send()
        .await
        .expect("SendMessage");
    let before = messages_left(&sqs, &queue_url).await;
    assert!(before >= 4, "the notifications arrived: {before}");

    let reports = work.path().join("reports");
    let out = run(loader()
        .args(["load", "--queue", &queue_name])
        .args(["--opensearch", &tests::opensearch_url()])
        .arg("--config")
        .arg(&user)
        .arg("--report-dir")
        .arg(&reports));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        lines(&reports.join("loader-load.error.log")),
        [format!("s3://{bucket}/{bad_key}")]
    );
    let mut finished = lines(&reports.join("loader-load.finish.log"));
    finished.sort();
    let mut expected: Vec<String> = good.iter().map(|k| format!("s3://{bucket}/{k}")).collect();
    expected.sort();
    assert_eq!(finished, expected);
    assert_eq!(count(&format!("{index}-*")).await, 2 * RECORDS as u64);
    // The broken object's message and the message that is no event stay in the queue.
    assert_eq!(messages_left(&sqs, &queue_url).await, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("queue: 2 messages loaded and deleted"),
        "{stderr}"
    );
    assert!(stderr.contains("not JSON"), "{stderr}");
}

#[tokio::test]
async fn configuration_and_exclusions_are_read_from_s3_urls() {
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = new_bucket(&s3, "cli-config").await;
    put(
        &s3,
        &bucket,
        "loader/user.ini",
        b"[cloudtrail]\nindex_rotation = daily\n".to_vec(),
    )
    .await;
    put(
        &s3,
        &bucket,
        "loader/exclude_log_patterns.csv",
        b"log_type,field,pattern,pattern_type,comment\ncloudtrail,eventName,ListBuckets,text,noise\n"
            .to_vec(),
    )
    .await;
    let out = run(loader().args([
        "check-config",
        "--type",
        "cloudtrail",
        "--config",
        &format!("s3://{bucket}/loader/user.ini"),
        "--exclusions",
        &format!("s3://{bucket}/loader/exclude_log_patterns.csv"),
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("index_rotation          = daily"),
        "{stdout}"
    );
    assert!(stdout.contains("ListBuckets"), "{stdout}");

    // A missing object is an error that names it.
    let out = run(loader().args([
        "check-config",
        "--config",
        &format!("s3://{bucket}/loader/missing.ini"),
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("s3://{bucket}/loader/missing.ini"))
    );
}

/// A bucket-shaped folder with an organization-trail object and an account-trail one (a key a
/// member account can write under its own prefix); returns the folder and the two keys.
fn trail_folder(dir: &Path) -> (PathBuf, String, String) {
    let bucket = dir.join("bucket");
    let trusted = cloudtrail_key("org");
    let forged = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_forged.json.gz".to_owned();
    for (key, tag) in [(&trusted, "org"), (&forged, "forged")] {
        let path = bucket.join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, cloudtrail_object(tag)).expect("write");
    }
    (bucket, trusted, forged)
}

#[test]
fn with_an_organization_id_a_forged_cloudtrail_object_is_refused_and_the_run_exits_1() {
    let work = tempfile::tempdir().expect("tempdir");
    let (bucket, trusted, forged) = trail_folder(work.path());
    let reports = work.path().join("reports");
    let ndjson = work.path().join("out.ndjson");
    let out = run(loader()
        .arg("load")
        .arg(&bucket)
        .args(["--organization-id", "o-abc123defg", "--out"])
        .arg(&ndjson)
        .arg("--report-dir")
        .arg(&reports));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused object makes exit code 1"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("  refused objects (CloudTrail objects must come from the organization trail of o-abc123defg (AWSLogs/o-abc123defg/<account>/CloudTrail/<region>/...); this key is writable by a member account): 1\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("objects finished: 1, failed: 0, refused: 1"),
        "{stderr}"
    );
    assert!(stderr.contains("1 refused"), "{stderr}");
    // Only the organization trail's object was read.
    assert_eq!(read(&ndjson).lines().count(), RECORDS);
    let forged_path = bucket.join(&forged).display().to_string();
    assert_eq!(
        lines(&reports.join("loader-load.finish.log")),
        [bucket.join(&trusted).display().to_string()]
    );
    // Not in the failed list (a rerun would refuse it again), in the debug log with its reason.
    assert!(read(&reports.join("loader-load.error.log")).is_empty());
    let debug = lines(&reports.join("loader-load.error_debug.log"));
    assert_eq!(debug.len(), 1, "{debug:?}");
    let entry: Value = serde_json::from_str(&debug[0]).expect("debug line is JSON");
    assert_eq!(entry["object"], forged_path);
    assert_eq!(
        entry["reason"],
        format!(
            "{forged_path}: refused: CloudTrail objects must come from the organization trail of o-abc123defg (AWSLogs/o-abc123defg/<account>/CloudTrail/<region>/...); this key is writable by a member account"
        )
    );

    // ORGANIZATION_ID from the environment does the same; without it, both objects load.
    let out = run(loader()
        .env("ORGANIZATION_ID", "o-abc123defg")
        .arg("load")
        .arg(&bucket)
        .arg("--out")
        .arg(&ndjson)
        .arg("--report-dir")
        .arg(work.path().join("env")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused: 1"));
    let out = run(loader()
        .arg("load")
        .arg(&bucket)
        .arg("--out")
        .arg(&ndjson)
        .arg("--report-dir")
        .arg(work.path().join("none")));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(read(&ndjson).lines().count(), 2 * RECORDS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("objects finished: 2, failed: 0\n"),
        "{stderr}"
    );

    // A value that is no organization id stops the start.
    let out = run(loader()
        .arg("load")
        .arg(&bucket)
        .args(["--organization-id", "111122223333"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Organizations id"));
}

/// Runs the loader off the async threads, so the test's proxy keeps answering meanwhile.
pub(crate) async fn run_async(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .expect("the loader run")
}

#[tokio::test]
async fn the_opensearch_credentials_come_from_the_secret_named_on_the_command_line() {
    use crate::sink::proxy::{FaultProxy, Faults};
    use std::sync::{Arc, Mutex};
    let config = tests::moto_config("us-east-1").await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let create = |text: &'static str| {
        let secrets = secrets.clone();
        async move {
            secrets
                .create_secret()
                .name(tests::unique_name("cli-opensearch"))
                .secret_string(text)
                .send()
                .await
                .expect("CreateSecret")
                .arn
                .expect("ARN")
        }
    };
    let arn = create(r#"{"username":"loader","password":"from-the-secret"}"#).await;
    let header = loader::sink::BasicCredentials::new("loader", "from-the-secret")
        .header()
        .to_str()
        .expect("ascii")
        .to_owned();
    let proxy = FaultProxy::start(
        &tests::opensearch_url(),
        Faults {
            require_authorization: Some(Arc::new(Mutex::new(header))),
            ..Faults::default()
        },
    )
    .await;
    let work = tempfile::tempdir().expect("tempdir");
    let index = tests::unique_name("log-test-cli-secret").to_ascii_lowercase();
    let user = user_config(work.path(), &index);
    let (bucket, ..) = trail_folder(work.path());

    // The environment's pair is wrong on purpose: the secret wins over it.
    let mut cmd = loader();
    cmd.env("OPENSEARCH_USERNAME", "env-user")
        .env("OPENSEARCH_PASSWORD", "env-password")
        .arg("load")
        .arg(&bucket)
        .args(["--opensearch", &proxy.url, "--opensearch-secret-arn", &arn])
        .arg("--config")
        .arg(&user)
        .arg("--report-dir")
        .arg(work.path().join("ok"));
    let out = run_async(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let c = &proxy.counters;
    assert_eq!(c.get(&c.responses_401), 0);
    assert_eq!(count(&format!("{index}-*")).await, 2 * RECORDS as u64);

    // A secret without a password stops the start, naming the secret, never a value of it.
    let broken = create(r#"{"username":"loader","pass":"hunter2"}"#).await;
    let mut cmd = loader();
    cmd.env("OPENSEARCH_AUTH", "basic")
        .env("OPENSEARCH_SECRET_ARN", &broken)
        .arg("load")
        .arg(&bucket)
        .args(["--opensearch", &proxy.url])
        .arg("--report-dir")
        .arg(work.path().join("broken"));
    let out = run_async(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&broken) && stderr.contains("`password`"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn a_redirected_log_has_no_colour_codes_and_a_binary_object_is_named() {
    let work = tempfile::tempdir().expect("tempdir");
    let path = work.path().join("bucket").join(cloudtrail_key("nul"));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, [0u8; 1000]).expect("write");
    let out = run(loader()
        .arg("load")
        .arg(work.path().join("bucket"))
        .arg("--out")
        .arg(work.path().join("out.ndjson"))
        .arg("--report-dir")
        .arg(work.path().join("reports"))
        .env("RUST_LOG", "info"));
    assert_eq!(out.status.code(), Some(1), "the object failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a redirected log"
    );
    assert!(
        stderr.contains("the object is not text: it holds binary data with NUL bytes"),
        "{stderr}"
    );
}

/// A large object loaded on several threads gives the bytes it gives on one, bad records
/// included.
#[test]
fn threads_change_no_byte_of_the_output() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    let key = cloudtrail_key("threads");
    let path = data.join(&key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let records: Vec<String> = (0..5_000)
        .map(|i| match i {
            1_500 => r#"{"eventTime": }"#.to_owned(),
            3_700 => r#"{"eventTime":"not a time","eventID":"bad"}"#.to_owned(),
            _ => format!(
                r#"{{"eventTime":"2024-05-01T00:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.{}","userAgent":"aws-cli/2.15.{}","eventID":"t-{i}","recipientAccountId":"111122223333"}}"#,
                i / 60 % 60,
                i % 60,
                i % 250,
                i % 7
            ),
        })
        .collect();
    std::fs::write(
        &path,
        gzip(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes()),
    )
    .expect("object");
    let load = |threads: &str| {
        let out = work.path().join(format!("out-{threads}.ndjson"));
        let result = run(loader()
            .arg("load")
            .arg(&data)
            .args([
                "--bulk",
                "--ingested",
                "2024-05-02T00:00:00Z",
                "--threads",
                threads,
            ])
            .arg("--out")
            .arg(&out)
            .arg("--report-dir")
            .arg(work.path().join(format!("report-{threads}"))));
        assert_eq!(result.status.code(), Some(0), "bad records fail no object");
        let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
        assert!(stderr.contains("documents: 4998"), "{stderr}");
        std::fs::read(&out).expect("output")
    };
    let one = load("1");
    let many = load("4");
    assert_eq!(one.len(), many.len());
    assert!(one == many, "the outputs differ");
}
