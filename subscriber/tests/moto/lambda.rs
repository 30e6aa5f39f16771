//! The binary in Lambda mode, against a loopback stand-in for the Lambda Runtime API: it fetches
//! one CreateLogGroup event, subscribes the group in moto and posts its answer.

use crate::support::{REGION, TestAccount, cloudtrail_event, serve};
use crate::{FILTER, SELF_FUNCTION};
use aws_credential_types::provider::ProvideCredentials;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[tokio::test]
async fn binary_in_lambda_mode_handles_an_event_from_the_runtime_api() {
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    account
        .create_groups(&["/app/lambda-mode".to_owned()])
        .await;
    let event = cloudtrail_event(
        &account.id,
        "CreateLogGroup",
        serde_json::json!({"logGroupName": "/app/lambda-mode"}),
        "alice",
    );
    let deadline = (chrono::Utc::now().timestamp_millis() + 120_000).to_string();
    // The runtime API's headers are static strings in the stand-in server.
    let deadline: &'static str = Box::leak(deadline.into_boxed_str());
    let function_arn: &'static str = Box::leak(
        format!(
            "arn:aws:lambda:{REGION}:{}:function:{SELF_FUNCTION}",
            account.id
        )
        .into_boxed_str(),
    );
    let delivered = Mutex::new(false);
    let (url, seen) = serve(move |request| {
        if request.path.ends_with("/invocation/next") {
            let mut done = delivered.lock().expect("lock");
            if *done {
                return None; // no second event: the long poll never returns
            }
            *done = true;
            return Some((
                200,
                vec![
                    ("Lambda-Runtime-Aws-Request-Id", "request-1"),
                    ("Lambda-Runtime-Deadline-Ms", deadline),
                    ("Lambda-Runtime-Invoked-Function-Arn", function_arn),
                    (
                        "Lambda-Runtime-Trace-Id",
                        "Root=1-00000000-000000000000000000000000",
                    ),
                    ("Content-Type", "application/json"),
                ],
                event.to_string(),
            ));
        }
        Some((202, vec![], String::new()))
    })
    .await;

    let credentials = account
        .config
        .credentials_provider()
        .expect("provider")
        .provide_credentials()
        .await
        .expect("credentials");
    let mut child = Command::new(env!("CARGO_BIN_EXE_subscriber"))
        .env("AWS_LAMBDA_RUNTIME_API", url.trim_start_matches("http://"))
        .env("AWS_LAMBDA_FUNCTION_NAME", SELF_FUNCTION)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{SELF_FUNCTION}"),
        )
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2024/05/01/[$LATEST]0123456789abcdef",
        )
        .env("AWS_ENDPOINT_URL", tests::moto_endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
        .env(
            "AWS_SESSION_TOKEN",
            credentials.session_token().unwrap_or_default(),
        )
        .env("DESTINATION_ARN", &collector)
        .env("FILTER_NAME", FILTER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the subscriber binary");

    let started = Instant::now();
    let answer = loop {
        let posted = seen
            .lock()
            .expect("lock")
            .iter()
            .find(|r| r.method == "POST")
            .cloned();
        if let Some(posted) = posted {
            break posted;
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some()
        {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "no answer posted to the runtime API; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");

    assert_eq!(
        answer.path, "/2018-06-01/runtime/invocation/request-1/response",
        "{answer:?}"
    );
    let body: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON answer");
    assert_eq!(body["action"], "subscribe_new_group", "{body}");
    assert_eq!(body["summary"]["subscribed"], 1, "{body}");
    assert_eq!(
        account.filters("/app/lambda-mode").await,
        vec![(FILTER.to_owned(), collector)]
    );
    // Metrics as Embedded Metric Format on stdout, the summary as a JSON log line on stderr.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\"LogGroupsSubscribed\":1.0"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|l| l["run"] == "subscribe_new_group" && l["subscribed"] == 1),
        "{stderr}"
    );
}
