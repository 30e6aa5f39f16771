//! [`LogsApi`] over the AWS SDK: rate-limited, retried on throttling, and counting every request
//! it sends (the benchmark reports these counts).

use crate::account::AccountPolicy;
use crate::reconcile::{ExistingFilter, FilterSpec, LogsApi, LogsError};
use crate::throttle::{Backoff, RateLimiter};
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs as cwl;
use cwl::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde::Serialize;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// Request rates and retries. Rates are per second for this client; 0 means no limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// PutSubscriptionFilter and DeleteSubscriptionFilter.
    pub put_rate: f64,
    /// DescribeLogGroups and DescribeSubscriptionFilters.
    pub describe_rate: f64,
    pub backoff: Backoff,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            put_rate: 5.0,
            describe_rate: 10.0,
            backoff: Backoff::default(),
        }
    }
}

/// Requests sent, per API; retries are counted as requests too.
#[derive(Debug, Default)]
struct Counters {
    describe_log_groups: AtomicU64,
    describe_subscription_filters: AtomicU64,
    put_subscription_filter: AtomicU64,
    delete_subscription_filter: AtomicU64,
    /// DescribeAccountPolicies, PutAccountPolicy and DeleteAccountPolicy.
    account_policy: AtomicU64,
    throttled: AtomicU64,
}

/// A snapshot of the request counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    pub describe_log_groups: u64,
    pub describe_subscription_filters: u64,
    pub put_subscription_filter: u64,
    pub delete_subscription_filter: u64,
    pub account_policy: u64,
    /// Requests answered with throttling (or another retryable error) and sent again.
    pub retried: u64,
}

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.describe_log_groups
            + self.describe_subscription_filters
            + self.put_subscription_filter
            + self.delete_subscription_filter
            + self.account_policy
    }
}

/// CloudWatch Logs of one account and region.
#[derive(Debug)]
pub struct CloudWatchLogs {
    client: cwl::Client,
    put: RateLimiter,
    describe: RateLimiter,
    backoff: Backoff,
    counters: Counters,
}

/// What to do with a failed request.
enum ErrorKind {
    Retry(String),
    NotFound,
    LimitExceeded,
    Fatal(String),
}

const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailableException",
    "ServiceUnavailable",
    "InternalFailure",
    "RequestTimeout",
];

fn classify<E, R>(error: &SdkError<E, R>) -> ErrorKind
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            ErrorKind::Retry(DisplayErrorContext(error).to_string())
        }
        SdkError::ServiceError(_) => {
            // The service's code and message say it all; the full context repeats the raw answer.
            let text = match (error.code(), error.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => DisplayErrorContext(error).to_string(),
            };
            match error.code() {
                Some("ResourceNotFoundException") => ErrorKind::NotFound,
                Some("LimitExceededException") => ErrorKind::LimitExceeded,
                Some(code) if RETRYABLE_CODES.contains(&code) => ErrorKind::Retry(text),
                _ => ErrorKind::Fatal(text),
            }
        }
        _ => ErrorKind::Fatal(DisplayErrorContext(error).to_string()),
    }
}

/// Bursts of up to one second's worth of requests: a handful of CreateLogGroup events arriving
/// together is served at once, and the average still holds.
fn burst(rate: f64) -> u32 {
    if rate.is_finite() && rate >= 1.0 {
        rate.min(1000.0) as u32
    } else {
        1
    }
}

impl CloudWatchLogs {
    /// The SDK's own retries are switched off: this client retries itself, so every request is
    /// counted and a long reconcile never runs out of the SDK's retry quota.
    pub fn new(config: &SdkConfig, limits: Limits) -> Self {
        let conf = cwl::config::Builder::from(config)
            .retry_config(RetryConfig::disabled())
            .build();
        CloudWatchLogs {
            client: cwl::Client::from_conf(conf),
            put: RateLimiter::new(limits.put_rate, burst(limits.put_rate)),
            describe: RateLimiter::new(limits.describe_rate, burst(limits.describe_rate)),
            backoff: limits.backoff,
            counters: Counters::default(),
        }
    }

    pub fn counts(&self) -> CallCounts {
        let c = &self.counters;
        CallCounts {
            describe_log_groups: c.describe_log_groups.load(Ordering::Relaxed),
            describe_subscription_filters: c.describe_subscription_filters.load(Ordering::Relaxed),
            put_subscription_filter: c.put_subscription_filter.load(Ordering::Relaxed),
            delete_subscription_filter: c.delete_subscription_filter.load(Ordering::Relaxed),
            account_policy: c.account_policy.load(Ordering::Relaxed),
            retried: c.throttled.load(Ordering::Relaxed),
        }
    }

    /// Sends one request with the rate limit and the retries. `LimitExceededException` is the
    /// two-filter limit for PutSubscriptionFilter (`limit_is_final`), and throttling elsewhere.
    async fn call<T, E, F, Fut>(
        &self,
        limiter: &RateLimiter,
        counter: &AtomicU64,
        operation: &'static str,
        target: &str,
        limit_is_final: bool,
        mut send: F,
    ) -> Result<T, LogsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, cwl::config::http::HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut retry = 0;
        loop {
            limiter.acquire().await;
            counter.fetch_add(1, Ordering::Relaxed);
            let error = match send().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let reason = match classify(&error) {
                ErrorKind::NotFound => {
                    return Err(LogsError::NotFound {
                        group: target.to_owned(),
                    });
                }
                ErrorKind::LimitExceeded if limit_is_final => {
                    return Err(LogsError::LimitExceeded {
                        group: target.to_owned(),
                    });
                }
                ErrorKind::LimitExceeded => "LimitExceededException".to_owned(),
                ErrorKind::Retry(reason) => reason,
                ErrorKind::Fatal(reason) => {
                    return Err(LogsError::Call {
                        operation,
                        target: target.to_owned(),
                        reason,
                    });
                }
            };
            if retry + 1 >= self.backoff.max_attempts {
                return Err(LogsError::Call {
                    operation,
                    target: target.to_owned(),
                    reason: format!("still failing after {} attempts: {reason}", retry + 1),
                });
            }
            self.counters.throttled.fetch_add(1, Ordering::Relaxed);
            let wait = self.backoff.delay(retry);
            tracing::debug!(operation, target, ?wait, %reason, "retrying");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

impl LogsApi for CloudWatchLogs {
    async fn list_log_groups(&self) -> Result<Vec<String>, LogsError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .call(
                    &self.describe,
                    &self.counters.describe_log_groups,
                    "DescribeLogGroups",
                    "the log groups of the account",
                    false,
                    || {
                        self.client
                            .describe_log_groups()
                            .limit(50)
                            .set_next_token(token.clone())
                            .send()
                    },
                )
                .await?;
            names.extend(
                page.log_groups()
                    .iter()
                    .filter_map(|g| g.log_group_name().map(str::to_owned)),
            );
            match page.next_token() {
                Some(next) if !next.is_empty() && Some(next) != token.as_deref() => {
                    token = Some(next.to_owned());
                }
                _ => break,
            }
        }
        Ok(names)
    }

    async fn describe_subscription_filters(
        &self,
        group: &str,
    ) -> Result<Vec<ExistingFilter>, LogsError> {
        let answer = self
            .call(
                &self.describe,
                &self.counters.describe_subscription_filters,
                "DescribeSubscriptionFilters",
                group,
                false,
                || {
                    self.client
                        .describe_subscription_filters()
                        .log_group_name(group)
                        .send()
                },
            )
            .await?;
        Ok(answer
            .subscription_filters()
            .iter()
            .map(|f| ExistingFilter {
                name: f.filter_name().unwrap_or_default().to_owned(),
                destination_arn: f.destination_arn().unwrap_or_default().to_owned(),
                filter_pattern: f.filter_pattern().unwrap_or_default().to_owned(),
                role_arn: f.role_arn().filter(|r| !r.is_empty()).map(str::to_owned),
            })
            .collect())
    }

    async fn put_subscription_filter(
        &self,
        group: &str,
        filter: &FilterSpec,
    ) -> Result<(), LogsError> {
        self.call(
            &self.put,
            &self.counters.put_subscription_filter,
            "PutSubscriptionFilter",
            group,
            true,
            || {
                self.client
                    .put_subscription_filter()
                    .log_group_name(group)
                    .filter_name(&filter.name)
                    .filter_pattern(&filter.pattern)
                    .destination_arn(&filter.destination_arn)
                    .set_role_arn(filter.role_arn.clone())
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn delete_subscription_filter(
        &self,
        group: &str,
        filter_name: &str,
    ) -> Result<(), LogsError> {
        self.call(
            &self.put,
            &self.counters.delete_subscription_filter,
            "DeleteSubscriptionFilter",
            group,
            false,
            || {
                self.client
                    .delete_subscription_filter()
                    .log_group_name(group)
                    .filter_name(filter_name)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn describe_account_policies(&self) -> Result<Vec<AccountPolicy>, LogsError> {
        let answer = self
            .call(
                &self.describe,
                &self.counters.account_policy,
                "DescribeAccountPolicies",
                "the account",
                false,
                || {
                    self.client
                        .describe_account_policies()
                        .policy_type(cwl::types::PolicyType::SubscriptionFilterPolicy)
                        .send()
                },
            )
            .await?;
        Ok(answer
            .account_policies()
            .iter()
            .map(|p| AccountPolicy {
                name: p.policy_name().unwrap_or_default().to_owned(),
                document: p.policy_document().unwrap_or_default().to_owned(),
                selection_criteria: p
                    .selection_criteria()
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            })
            .collect())
    }

    async fn put_account_policy(&self, policy: &AccountPolicy) -> Result<(), LogsError> {
        self.call(
            &self.put,
            &self.counters.account_policy,
            "PutAccountPolicy",
            "the account",
            false,
            || {
                self.client
                    .put_account_policy()
                    .policy_name(&policy.name)
                    .policy_document(&policy.document)
                    .policy_type(cwl::types::PolicyType::SubscriptionFilterPolicy)
                    .scope(cwl::types::Scope::All)
                    .set_selection_criteria(policy.selection_criteria.clone())
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn delete_account_policy(&self, name: &str) -> Result<(), LogsError> {
        self.call(
            &self.put,
            &self.counters.account_policy,
            "DeleteAccountPolicy",
            "the account",
            false,
            || {
                self.client
                    .delete_account_policy()
                    .policy_name(name)
                    .policy_type(cwl::types::PolicyType::SubscriptionFilterPolicy)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }
}
