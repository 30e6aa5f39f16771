//! The `loader` executable in Lambda mode, under a stand-in of the Lambda runtime API: what
//! `main` builds from the environment (S3 client at `AWS_ENDPOINT_URL`, the user file from
//! `LOADER_CONFIG` in S3, the OpenSearch sink, the quarantine bucket) loads an SQS batch, answers
//! with a partial batch response and prints the per-object EMF metrics on stdout.

use super::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:loader";

/// Serves one invocation of `event`, then holds every later `next` call; the function's answer
/// (response or error, with its path) goes to `answers`.
async fn runtime_api(event: Value) -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = mpsc::channel(4);
    let served = Arc::new(AtomicBool::new(false));
    let event = Arc::new(event.to_string());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (tx, served, event) = (tx.clone(), Arc::clone(&served), Arc::clone(&event));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (tx, served, event) = (tx.clone(), Arc::clone(&served), Arc::clone(&event));
                    async move {
                        let path = req.uri().path().to_owned();
                        if path.ends_with("/invocation/next") {
                            if served.swap(true, Ordering::SeqCst) {
                                // One invocation only: the process is stopped after it.
                                futures::future::pending::<()>().await;
                            }
                            let deadline = chrono::Utc::now().timestamp_millis() + 120_000;
                            let mut r = Response::new(Full::new(Bytes::from(event.to_string())));
                            let h = r.headers_mut();
                            h.insert(
                                "lambda-runtime-aws-request-id",
                                "req-1".parse().expect("header"),
                            );
                            h.insert(
                                "lambda-runtime-deadline-ms",
                                deadline.to_string().parse().expect("header"),
                            );
                            h.insert(
                                "lambda-runtime-invoked-function-arn",
                                FUNCTION_ARN.parse().expect("header"),
                            );
                            return Ok::<_, hyper::Error>(r);
                        }
                        let body = req.into_body().collect().await?.to_bytes();
                        let _ = tx
                            .send((path, String::from_utf8_lossy(&body).into_owned()))
                            .await;
                        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
                        *r.status_mut() = hyper::StatusCode::ACCEPTED;
                        Ok(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr.to_string(), rx)
}

/// What one invocation of the executable left: the path and body of its answer, its log
/// (stderr) and its stdout (EMF lines).
struct Invocation {
    path: String,
    body: String,
    logs: String,
    stdout: String,
}

/// Runs the executable in Lambda mode for one invocation of `event`, with moto as the AWS
/// endpoint, the test region and metrics namespace, plus `env`; stopped once it answered.
async fn invoke_once(event: Value, env: &[(&str, &str)]) -> Invocation {
    let (api, mut answers) = runtime_api(event).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loader"))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "loader")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL", tests::moto_endpoint())
        .env("AWS_REGION", REGION)
        .env("METRICS_NAMESPACE", "LoaderTest")
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::from(
            std::fs::File::create(&stdout).expect("stdout file"),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(&stderr).expect("stderr file"),
        ))
        .spawn()
        .expect("start the loader");
    // A guard against a hang, not a measurement.
    let answer = tokio::time::timeout(Duration::from_secs(120), answers.recv()).await;
    let _ = child.kill();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&stderr).unwrap_or_default();
    let (path, body) = answer
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no answer from the function; its log:\n{logs}"));
    Invocation {
        path,
        body,
        logs,
        stdout: std::fs::read_to_string(&stdout).unwrap_or_default(),
    }
}

#[tokio::test]
async fn the_executable_loads_a_batch_under_the_lambda_runtime() {
    let env = setup("binary").await;
    // The user file from S3 renames the CloudTrail index, so the count is this test's own.
    let user = format!("[cloudtrail]\nindex_name = {}\n", env.index);
    env.put("config/user.ini", user.into_bytes()).await;
    env.put(&key(1), cloudtrail("bin", 17)).await;
    let mut broken = cloudtrail("cut", 40);
    broken.truncate(30);
    env.put(&key(2), broken).await;
    let messages = env.receive(2).await;
    let event = serde_json::to_value(sqs_event(&messages)).expect("event JSON");
    let broken_id = messages
        .iter()
        .find(|m| {
            m.body()
                .is_some_and(|b| b.contains("obj+2") || b.contains("obj%202"))
        })
        .and_then(|m| m.message_id().map(str::to_owned))
        .expect("notification of the broken object");

    let config = format!("s3://{}/config/user.ini", env.bucket);
    let Invocation {
        path,
        body,
        logs,
        stdout,
    } = invoke_once(
        event,
        &[
            ("OPENSEARCH_ENDPOINT", &tests::opensearch_url()),
            ("QUARANTINE_BUCKET", &env.bucket),
            ("LOADER_CONFIG", &config),
            ("LOADER_CONCURRENCY", "2"),
        ],
    )
    .await;
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-1/response",
        "{body}\n{logs}"
    );
    let response: Value = serde_json::from_str(&body).expect("response JSON");
    assert_eq!(
        response,
        json!({ "batchItemFailures": [{ "itemIdentifier": broken_id }] }),
        "{logs}"
    );
    assert_eq!(env.count().await, 17);

    // One JSON log line per object, naming its decoded key and type.
    let object_lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("s3_key").is_some())
        .collect();
    let loaded = object_lines
        .iter()
        .find(|l| l["s3_key"] == key(1).as_str())
        .unwrap_or_else(|| panic!("no log line for {}:\n{logs}", key(1)));
    assert_eq!(loaded["log_type"], "cloudtrail");
    assert_eq!(loaded["outcome"], "loaded");
    assert_eq!(loaded["documents"], 17);
    let failed = object_lines
        .iter()
        .find(|l| l["s3_key"] == key(2).as_str())
        .unwrap_or_else(|| panic!("no log line for {}:\n{logs}", key(2)));
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["level"], "ERROR");

    // EMF lines on stdout, under the configured namespace, per log type.
    let metrics: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["logtype"] == "cloudtrail")
        .collect();
    assert_eq!(metrics.len(), 2, "{metrics:?}");
    assert!(
        metrics
            .iter()
            .all(|m| m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LoaderTest")
    );
    let success: f64 = metrics
        .iter()
        .filter_map(|m| m["SuccessLogLoadCount"].as_f64())
        .sum();
    assert_eq!(success, 17.0);
}

/// The scheduled freshness check through `main`: the task event is told apart from queue
/// batches, the check reads the cluster the function loads into, stores the alerts of the quiet
/// sources with the function's sink, answers with them and prints its metrics.
#[tokio::test]
async fn the_executable_runs_the_scheduled_freshness_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, _, _) = crate::freshness::cluster_with_sources(dir.path()).await;
    let Invocation {
        path,
        body,
        logs,
        stdout,
    } = invoke_once(
        json!({"task": "freshness"}),
        &[
            ("OPENSEARCH_ENDPOINT", &cluster.url),
            ("FRESHNESS_LOOKBACK", "30d"),
        ],
    )
    .await;
    assert_eq!(
        path, "/2018-06-01/runtime/invocation/req-1/response",
        "{body}\n{logs}"
    );
    let response: Value = serde_json::from_str(&body).expect("response JSON");
    assert_eq!(response["sources"], 5, "{response}");
    assert_eq!(response["alerts_created"], 2, "{response}");
    assert_eq!(
        response["quiet"][0]["account"], "222222222222",
        "{response}"
    );
    assert_eq!(crate::sink::count_at(&cluster.url, "alert-*").await, 2);
    let metrics: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("QuietSourceCount").is_some())
        .collect();
    assert_eq!(metrics.len(), 1, "{metrics:?}\n{logs}");
    assert_eq!(metrics[0]["QuietSourceCount"], 2.0);
    assert_eq!(metrics[0]["Function"], "loader");
}
