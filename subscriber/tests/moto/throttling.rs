//! Throttling answered by a scripted endpoint (moto never throttles): the client backs off and
//! retries, and the two-filter limit is reported, not retried.

use crate::support::scripted_server;
use subscriber::aws::{CloudWatchLogs, Limits};
use subscriber::reconcile::{FilterSpec, LogsApi, LogsError};
use subscriber::throttle::Backoff;

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
const LIMIT: &str = r#"{"__type":"LimitExceededException","message":"Resource limit exceeded."}"#;

async fn client(url: &str) -> CloudWatchLogs {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::for_tests())
        .load()
        .await;
    CloudWatchLogs::new(
        &config,
        Limits {
            put_rate: 0.0,
            describe_rate: 0.0,
            backoff: Backoff {
                max_attempts: 5,
                base: std::time::Duration::from_millis(10),
                cap: std::time::Duration::from_millis(50),
            },
        },
    )
}

#[tokio::test]
async fn throttled_listing_is_retried_with_backoff() {
    let json = vec![("Content-Type", "application/x-amz-json-1.1")];
    let (url, seen) = scripted_server(vec![
        (400, json.clone(), THROTTLED.to_owned()),
        (400, json.clone(), THROTTLED.to_owned()),
        (
            200,
            json.clone(),
            r#"{"logGroups":[{"logGroupName":"/a"},{"logGroupName":"/b"}]}"#.to_owned(),
        ),
    ])
    .await;
    let api = client(&url).await;
    let groups = api.list_log_groups().await.expect("listing after retries");
    assert_eq!(groups, vec!["/a".to_owned(), "/b".to_owned()]);
    let counts = api.counts();
    assert_eq!((counts.describe_log_groups, counts.retried), (3, 2));
    assert_eq!(seen.lock().expect("lock").len(), 3);
}

#[tokio::test]
async fn persistent_throttling_gives_up_with_a_clear_error() {
    let json = vec![("Content-Type", "application/x-amz-json-1.1")];
    let (url, _) = scripted_server(vec![(400, json, THROTTLED.to_owned())]).await;
    let api = client(&url).await;
    let err = api
        .describe_subscription_filters("/app/x")
        .await
        .expect_err("gives up");
    let text = err.to_string();
    assert!(
        text.contains("/app/x") && text.contains("5 attempts"),
        "{text}"
    );
    assert_eq!(api.counts().describe_subscription_filters, 5);
}

#[tokio::test]
async fn two_filter_limit_is_not_retried() {
    let json = vec![("Content-Type", "application/x-amz-json-1.1")];
    let (url, _) = scripted_server(vec![(400, json, LIMIT.to_owned())]).await;
    let api = client(&url).await;
    let spec = FilterSpec {
        name: "ours".into(),
        pattern: String::new(),
        destination_arn: "arn:aws:lambda:us-east-1:111122223333:function:collector".into(),
        role_arn: None,
    };
    let err = api
        .put_subscription_filter("/app/x", &spec)
        .await
        .expect_err("limit");
    assert!(matches!(err, LogsError::LimitExceeded { ref group } if group == "/app/x"));
    assert_eq!(api.counts().put_subscription_filter, 1);
}

/// A reconcile under sustained throttling finishes with every group subscribed and no failure.
/// (2,000 groups here; the benchmark runs 10,000.)
#[tokio::test]
async fn reconcile_under_throttling_finishes_without_errors() {
    use subscriber::reconcile::{self, Options};
    use subscriber::settings::{RawSettings, Settings};

    let url = crate::support::throttling_logs_server(2_000).await;
    let api = client(&url).await;
    let settings = Settings::new(RawSettings {
        filter_name: "ours".into(),
        destination_arn: "arn:aws:lambda:us-east-1:111122223333:function:collector".into(),
        ..RawSettings::default()
    })
    .expect("settings");
    let options = Options {
        dry_run: false,
        concurrency: 32,
        deadline: None,
    };
    let summary = reconcile::reconcile(&api, &settings, options)
        .await
        .expect("reconcile");
    assert_eq!(summary.failures, 0, "{:?}", summary.failure_details);
    assert_eq!((summary.groups_seen, summary.subscribed), (2_000, 2_000));
    let counts = api.counts();
    // 40 pages + 2,000 describes + 2,000 puts; every third of them throttled twice.
    let calls: u64 = 40 + 2_000 + 2_000;
    assert_eq!(counts.retried, calls.div_ceil(3) * 2, "{counts:?}");
    assert_eq!(counts.total(), calls + counts.retried);

    let again = reconcile::reconcile(&api, &settings, options)
        .await
        .expect("reconcile");
    assert_eq!(
        (again.already_subscribed, again.subscribed, again.failures),
        (2_000, 0, 0)
    );
}
