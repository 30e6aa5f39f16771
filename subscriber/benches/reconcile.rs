//! Reconcile and event latency against moto (not a timed test).
//!
//! ```sh
//! # with a moto server listening, e.g. the one scripts/test starts
//! TEST_MOTO_ENDPOINT=http://127.0.0.1:5000 cargo bench -p subscriber --bench reconcile
//! ```
//!
//! `BENCH_GROUPS` (default 2000) and `BENCH_CONCURRENCY` (default 8) change the run. Reports the
//! wall time and the API requests of a first reconcile (every group needs our filter) and of a
//! second one (nothing to do), and the time from handler start to the PutSubscriptionFilter
//! answer for single CreateLogGroup events. A last run reconciles `BENCH_THROTTLED_GROUPS`
//! (default 10,000) groups against an in-process endpoint that throttles every third request.

#[path = "../tests/moto/support.rs"]
mod support;

use shared::cfn::HttpResponder;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subscriber::account::AccountPolicy;
use subscriber::aws::{CloudWatchLogs, Limits};
use subscriber::handler::Handler;
use subscriber::reconcile::{self, ExistingFilter, FilterSpec, LogsApi, LogsError, Options};
use subscriber::settings::{RawSettings, Settings};
use support::TestAccount;

/// Records when each PutSubscriptionFilter answered.
struct Timed {
    inner: CloudWatchLogs,
    put_done: Mutex<Option<Instant>>,
}

impl LogsApi for Timed {
    async fn list_log_groups(&self) -> Result<Vec<String>, LogsError> {
        self.inner.list_log_groups().await
    }
    async fn describe_subscription_filters(
        &self,
        group: &str,
    ) -> Result<Vec<ExistingFilter>, LogsError> {
        self.inner.describe_subscription_filters(group).await
    }
    async fn put_subscription_filter(
        &self,
        group: &str,
        filter: &FilterSpec,
    ) -> Result<(), LogsError> {
        let result = self.inner.put_subscription_filter(group, filter).await;
        if let Ok(mut done) = self.put_done.lock() {
            *done = Some(Instant::now());
        }
        result
    }
    async fn delete_subscription_filter(&self, group: &str, name: &str) -> Result<(), LogsError> {
        self.inner.delete_subscription_filter(group, name).await
    }
    async fn describe_account_policies(&self) -> Result<Vec<AccountPolicy>, LogsError> {
        self.inner.describe_account_policies().await
    }
    async fn put_account_policy(&self, policy: &AccountPolicy) -> Result<(), LogsError> {
        self.inner.put_account_policy(policy).await
    }
    async fn delete_account_policy(&self, name: &str) -> Result<(), LogsError> {
        self.inner.delete_account_policy(name).await
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unlimited() -> Limits {
    Limits {
        put_rate: 0.0,
        describe_rate: 0.0,
        ..Limits::default()
    }
}

#[tokio::main]
async fn main() {
    let groups = env_number("BENCH_GROUPS", 2000);
    let concurrency = env_number("BENCH_CONCURRENCY", 8);
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    let names: Vec<String> = (0..groups)
        .map(|i| format!("/bench/service-{i:05}"))
        .collect();
    let started = Instant::now();
    account.create_groups(&names).await;
    println!(
        "setup: {groups} log groups created in {:.2?}",
        started.elapsed()
    );

    let settings = Settings::new(RawSettings {
        filter_name: "org-security-logs".into(),
        destination_arn: collector.clone(),
        function_name: Some("org-security-logs-subscriber".into()),
        ..RawSettings::default()
    })
    .expect("settings");
    let options = Options {
        dry_run: false,
        concurrency,
        deadline: None,
    };

    for run in ["first reconcile", "second reconcile"] {
        let api = CloudWatchLogs::new(&account.config, unlimited());
        let started = Instant::now();
        let summary = reconcile::reconcile(&api, &settings, options)
            .await
            .expect("reconcile");
        let elapsed = started.elapsed();
        let counts = api.counts();
        println!(
            "{run}: {groups} groups, concurrency {concurrency}: {:.2?} ({:.0} groups/s); subscribed {}, already {}; requests: DescribeLogGroups {}, DescribeSubscriptionFilters {}, PutSubscriptionFilter {}, total {}, retried {}",
            elapsed,
            groups as f64 / elapsed.as_secs_f64(),
            summary.subscribed,
            summary.already_subscribed,
            counts.describe_log_groups,
            counts.describe_subscription_filters,
            counts.put_subscription_filter,
            counts.total(),
            counts.retried
        );
    }

    // Sustained throttling: every third request answered ThrottlingException twice.
    let throttled_groups = env_number("BENCH_THROTTLED_GROUPS", 10_000);
    let url = support::throttling_logs_server(throttled_groups).await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&url)
        .region(aws_config::Region::new(support::REGION))
        .credentials_provider(aws_credential_types::Credentials::for_tests())
        .load()
        .await;
    let api = CloudWatchLogs::new(&config, unlimited());
    let started = Instant::now();
    let summary = reconcile::reconcile(&api, &settings, options)
        .await
        .expect("reconcile");
    let counts = api.counts();
    println!(
        "reconcile under throttling: {throttled_groups} groups: {:.2?}; subscribed {}, failures {}; requests {}, of which retried {}",
        started.elapsed(),
        summary.subscribed,
        summary.failures,
        counts.total(),
        counts.retried
    );

    let handler = Handler {
        api: Timed {
            // Unlimited: this measures the handler and one request, not the rate limit.
            inner: CloudWatchLogs::new(&account.config, unlimited()),
            put_done: Mutex::new(None),
        },
        responder: HttpResponder::new().expect("HTTP client"),
        settings,
        options,
    };
    let mut latencies: Vec<Duration> = Vec::new();
    for i in 0..25 {
        let group = format!("/bench/new-{i}");
        account.create_groups(std::slice::from_ref(&group)).await;
        let event = support::cloudtrail_event(
            &account.id,
            "CreateLogGroup",
            serde_json::json!({"logGroupName": group}),
            "bench",
        );
        let started = Instant::now();
        handler.handle(&event, None).await.expect("handled");
        let done = handler
            .api
            .put_done
            .lock()
            .ok()
            .and_then(|d| *d)
            .expect("a PutSubscriptionFilter was sent");
        latencies.push(done.duration_since(started));
    }
    // The first event pays for the connection set-up.
    let first = latencies[0];
    let mut warm = latencies[1..].to_vec();
    warm.sort();
    println!(
        "CreateLogGroup event -> PutSubscriptionFilter answered: first {:.2?}; warm median {:.2?}, min {:.2?}, max {:.2?} ({} events)",
        first,
        warm[warm.len() / 2],
        warm[0],
        warm[warm.len() - 1],
        warm.len()
    );
}
