//! The Lambda function's work for one event.

use crate::account;
use crate::events::{self, CustomResourceRequest, Event, Identity, RequestType};
use crate::reconcile::{self, FilterSpec, LogsApi, LogsError, Options, Summary, reconcile_group};
use crate::settings::{Mode, Settings};
use serde_json::{Value, json};
use shared::cfn::{Responder, Response, Status};
use std::time::Duration;

/// Failures of one invocation that the caller (the Lambda runtime) should see as errors.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Event(#[from] events::EventError),
    #[error(transparent)]
    Logs(#[from] LogsError),
    #[error(transparent)]
    Response(#[from] shared::cfn::ResponseError),
}

impl HandlerError {
    /// The `errorType` the Lambda runtime reports: a stable name an alarm or a log query can
    /// match, instead of a Rust type path.
    pub fn kind(&self) -> &'static str {
        match self {
            HandlerError::Event(_) => "InvalidEvent",
            HandlerError::Logs(LogsError::NotFound { .. }) => "LogGroupNotFound",
            HandlerError::Logs(LogsError::LimitExceeded { .. }) => "SubscriptionFilterLimit",
            HandlerError::Logs(LogsError::Call { .. }) => "CloudWatchLogsCallFailed",
            HandlerError::Response(_) => "CustomResourceResponseFailed",
        }
    }
}

/// Everything one invocation needs.
pub struct Handler<A, R> {
    pub api: A,
    pub responder: R,
    pub settings: Settings,
    pub options: Options,
}

/// What an invocation did, returned to the caller and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub action: &'static str,
    pub summary: Summary,
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        json!({"action": self.action, "summary": self.summary})
    }
}

impl<A: LogsApi, R: Responder> Handler<A, R> {
    /// Handles one event. `budget` is the time left before the function times out: a custom
    /// resource is answered before it runs out.
    pub async fn handle(
        &self,
        event: &Value,
        budget: Option<Duration>,
    ) -> Result<Outcome, HandlerError> {
        let parsed = match events::classify(event) {
            Ok(parsed) => parsed,
            Err(error) => {
                if let Some(url) = event["ResponseURL"].as_str() {
                    // A malformed custom resource request is still answered, or the stack hangs.
                    let response = Response::for_request(
                        event,
                        "subscriber",
                        Status::Failed,
                        &error.to_string(),
                    );
                    self.responder.send(url, &response).await?;
                }
                return Err(error.into());
            }
        };
        let spec = FilterSpec::from_settings(&self.settings);
        match parsed {
            Event::CreateLogGroup { group } if self.settings.mode == Mode::Account => Ok(Outcome {
                action: "new_group_under_account_policy",
                summary: account::new_group(
                    &self.api,
                    &self.settings,
                    &group,
                    self.options.dry_run,
                )
                .await?,
            }),
            Event::CreateLogGroup { group } => Ok(Outcome {
                action: "subscribe_new_group",
                summary: self.subscribe_new(&spec, &group).await,
            }),
            // The account policy covers every group: no filter of ours to put back.
            Event::DeleteSubscriptionFilter { .. } if self.settings.mode == Mode::Account => {
                Ok(Outcome {
                    action: "ignored",
                    summary: Summary::default(),
                })
            }
            Event::DeleteSubscriptionFilter {
                group,
                filter,
                deleted_by,
            } => Ok(Outcome {
                action: "filter_deleted",
                summary: self.restore(&spec, &group, &filter, &deleted_by).await,
            }),
            Event::Scheduled => {
                let options = self.options_within(budget, Duration::from_secs(10));
                let summary = account::apply(&self.api, &self.settings, options).await?;
                Ok(Outcome {
                    action: "reconcile",
                    summary,
                })
            }
            Event::CustomResource(request) => self.custom_resource(event, &request, budget).await,
            Event::Ignored { reason } => {
                tracing::info!(%reason, "event ignored");
                Ok(Outcome {
                    action: "ignored",
                    summary: Summary::default(),
                })
            }
        }
    }

    /// The options with a deadline `reserve` before the end of `budget`.
    fn options_within(&self, budget: Option<Duration>, reserve: Duration) -> Options {
        Options {
            deadline: budget
                .map(|b| tokio::time::Instant::now() + b.saturating_sub(reserve))
                .or(self.options.deadline),
            ..self.options
        }
    }

    /// A new log group has no filters yet, so no describe call: the put alone is idempotent
    /// (same filter name) and fails with LimitExceeded only if two others raced ahead of it.
    async fn subscribe_new(&self, spec: &FilterSpec, group: &str) -> Summary {
        let mut summary = Summary {
            dry_run: self.options.dry_run,
            groups_seen: 1,
            ..Summary::default()
        };
        if let Some(skip) = self.settings.skip_reason(group) {
            tracing::info!(log_group = group, reason = ?skip, "new log group {group} not subscribed");
            summary.record_skip(&skip);
            return summary;
        }
        if self.options.dry_run {
            summary.subscribed += 1;
            return summary;
        }
        match self.api.put_subscription_filter(group, spec).await {
            Ok(()) => {
                tracing::info!(
                    log_group = group,
                    destination = spec.destination_arn,
                    "subscribed new log group {group}"
                );
                summary.subscribed += 1;
            }
            Err(LogsError::LimitExceeded { .. }) => {
                // Name the filters in the warning: one describe call, only on this rare path.
                let names = self
                    .api
                    .describe_subscription_filters(group)
                    .await
                    .map(|filters| filters.into_iter().map(|f| f.name).collect())
                    .unwrap_or_default();
                summary.record_conflict(group, names);
            }
            Err(LogsError::NotFound { .. }) => summary.vanished += 1,
            Err(error) => summary.record_failure(group, &error),
        }
        summary
    }

    /// Someone deleted a subscription filter: if it was ours and the group still exists, put it
    /// back and say who deleted it.
    async fn restore(
        &self,
        spec: &FilterSpec,
        group: &str,
        filter: &str,
        deleted_by: &Identity,
    ) -> Summary {
        let summary = Summary {
            dry_run: self.options.dry_run,
            ..Summary::default()
        };
        if filter != spec.name {
            tracing::debug!(
                log_group = group,
                filter,
                "another team's filter was deleted; ignored"
            );
            return summary;
        }
        if let Some(function) = &self.settings.function_name
            && deleted_by.is_function(function)
        {
            tracing::info!(
                log_group = group,
                "our own removal (custom resource Delete); not restored"
            );
            return summary;
        }
        let restored =
            reconcile_group(&self.api, &self.settings, spec, group, self.options.dry_run).await;
        if restored.subscribed + restored.updated > 0 {
            tracing::warn!(
                log_group = group,
                filter,
                deleted_by = deleted_by.describe(),
                deleted_by_type = deleted_by.identity_type,
                source_ip = deleted_by.source_ip,
                user_agent = deleted_by.user_agent,
                "subscription filter {filter} on {group} was deleted by {}; restored",
                deleted_by.describe()
            );
            let mut metrics = shared::metrics::Metrics::from_env();
            metrics.count("SubscriptionFiltersRestored", 1);
            metrics.flush();
        }
        restored
    }

    async fn custom_resource(
        &self,
        raw: &Value,
        request: &CustomResourceRequest,
        budget: Option<Duration>,
    ) -> Result<Outcome, HandlerError> {
        // Leave time to send the answer before the function is stopped.
        let options = self.options_within(budget, Duration::from_secs(20));
        let result = match request.request_type {
            RequestType::Create => account::apply(&self.api, &self.settings, options).await,
            RequestType::Update => self.update(raw, options).await,
            RequestType::Delete => account::remove(&self.api, &self.settings, options).await,
        };
        let (status, reason, summary) = match result {
            Err(error) => (Status::Failed, error.to_string(), Summary::default()),
            // Every group failed and none was done: a systematic fault (the destination is
            // missing or refuses CloudWatch Logs, a permission is lacking) that the stack must
            // show. Failures of a few groups among successes are reported but do not roll the
            // deployment back.
            Ok(summary)
                if summary.failures > 0
                    && summary.subscribed
                        + summary.updated
                        + summary.already_subscribed
                        + summary.removed
                        == 0 =>
            {
                (Status::Failed, failure_reason(&summary), summary)
            }
            Ok(summary) => (Status::Success, completed_reason(&summary), summary),
        };
        let mut response = Response::for_request(raw, "subscriber", status, &reason);
        for (key, value) in [
            ("LogGroups", summary.groups_seen),
            ("Subscribed", summary.subscribed + summary.updated),
            ("AlreadySubscribed", summary.already_subscribed),
            ("Conflicts", summary.conflicts),
            ("Failures", summary.failures),
            ("Removed", summary.removed),
        ] {
            response.data.insert(key.to_owned(), value.to_string());
        }
        if status == Status::Failed {
            tracing::error!(reason, "custom resource {:?} failed", request.request_type);
        }
        self.responder
            .send(&request.response_url, &response)
            .await?;
        Ok(Outcome {
            action: match request.request_type {
                RequestType::Delete => "custom_resource_delete",
                _ => "custom_resource_backfill",
            },
            summary,
        })
    }
}

impl<A: LogsApi, R: Responder> Handler<A, R> {
    /// An Update reconciles; when the filter name changed, the filters of the old name are
    /// removed first, or every group would keep a second filter to the same destination.
    async fn update(&self, raw: &Value, options: Options) -> Result<Summary, LogsError> {
        let old_name = raw["OldResourceProperties"]["FilterName"]
            .as_str()
            .filter(|n| !n.is_empty() && *n != self.settings.filter_name);
        let mut summary = Summary::default();
        if let Some(old_name) = old_name {
            tracing::info!(
                old_name,
                new_name = self.settings.filter_name,
                "filter renamed; removing the old filters"
            );
            let mut old = self.settings.clone();
            old.filter_name = old_name.to_owned();
            summary = reconcile::remove_all(&self.api, &old, options).await?;
            // An account policy of the old name too: one per account, so it goes first.
            account::withdraw_policy(&self.api, &old, options.dry_run, &mut summary).await;
            // The groups are counted by the reconcile that follows.
            summary.groups_seen = 0;
            summary.vanished = 0;
        }
        summary.merge(account::apply(&self.api, &self.settings, options).await?);
        Ok(summary)
    }
}

fn failure_reason(summary: &Summary) -> String {
    let first: Vec<&str> = summary
        .failure_details
        .iter()
        .take(3)
        .map(|f| f.reason.as_str())
        .collect();
    format!(
        "{} of {} log groups failed: {}",
        summary.failures,
        summary.groups_seen,
        first.join("; ")
    )
}

fn completed_reason(summary: &Summary) -> String {
    let mut reason = format!(
        "{} log groups: {} subscribed, {} already subscribed, {} removed, {} conflicts",
        summary.groups_seen,
        summary.subscribed + summary.updated,
        summary.already_subscribed,
        summary.removed,
        summary.conflicts
    );
    if summary.failures > 0 {
        reason.push_str("; ");
        reason.push_str(&failure_reason(summary));
    }
    if summary.incomplete {
        // Not a failure: rolling the stack back would not subscribe anything sooner.
        reason.push_str(
            "; the function's time ran out before every log group was handled: the scheduled \
             reconcile (or `subscriber reconcile`/`subscriber remove`) continues",
        );
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fake::FakeLogs;
    use crate::settings::RawSettings;
    use shared::cfn::ResponseError;
    use std::sync::Mutex;

    const DEST: &str = "arn:aws:lambda:us-east-1:111122223333:function:collector";

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, Response)>>);

    impl Responder for Recorder {
        async fn send(&self, url: &str, response: &Response) -> Result<(), ResponseError> {
            self.0
                .lock()
                .unwrap()
                .push((url.to_owned(), response.clone()));
            Ok(())
        }
    }

    fn handler(api: FakeLogs) -> Handler<FakeLogs, Recorder> {
        Handler {
            api,
            responder: Recorder::default(),
            settings: Settings::new(RawSettings {
                filter_name: "ours".into(),
                destination_arn: DEST.into(),
                function_name: Some("subscriber".into()),
                exclude: Some("^/excluded".into()),
                ..RawSettings::default()
            })
            .unwrap(),
            options: Options::default(),
        }
    }

    fn trail(name: &str, params: Value, who: &str) -> Value {
        json!({
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.logs",
            "detail": {
                "eventSource": "logs.amazonaws.com",
                "eventName": name,
                "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::111122223333:assumed-role/R/{who}")},
                "requestParameters": params
            }
        })
    }

    #[tokio::test]
    async fn an_unknown_event_fails_with_a_named_error_type() {
        let h = handler(FakeLogs::with_groups(&[]));
        let error = h
            .handle(&json!({"hello": "world"}), None)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "InvalidEvent");
        assert!(!error.kind().contains("::"));
    }

    #[tokio::test]
    async fn create_log_group_puts_one_filter_without_describing() {
        let h = handler(FakeLogs::with_groups(&["/app/new"]));
        let event = trail(
            "CreateLogGroup",
            json!({"logGroupName": "/app/new"}),
            "alice",
        );
        let outcome = h.handle(&event, None).await.unwrap();
        assert_eq!(outcome.summary.subscribed, 1);
        assert_eq!(h.api.filters("/app/new")[0].destination_arn, DEST);
        assert_eq!(h.api.count("describe"), 0);
        assert_eq!(h.api.count("put"), 1);
    }

    #[tokio::test]
    async fn create_of_own_or_excluded_group_puts_nothing() {
        let h = handler(FakeLogs::with_groups(&[
            "/aws/lambda/collector",
            "/excluded/x",
        ]));
        for group in [
            "/aws/lambda/collector",
            "/aws/lambda/subscriber",
            "/excluded/x",
        ] {
            let event = trail("CreateLogGroup", json!({"logGroupName": group}), "alice");
            h.handle(&event, None).await.unwrap();
        }
        assert_eq!(h.api.count("put"), 0);
    }

    #[tokio::test]
    async fn deleted_filter_of_ours_comes_back_others_do_not() {
        let h = handler(FakeLogs::with_groups(&["/app/x"]));
        let ours = trail(
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "/app/x", "filterName": "ours"}),
            "mallory",
        );
        let outcome = h.handle(&ours, None).await.unwrap();
        assert_eq!(outcome.summary.subscribed, 1);
        assert_eq!(h.api.filters("/app/x")[0].name, "ours");

        let theirs = trail(
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "/app/x", "filterName": "theirs"}),
            "mallory",
        );
        h.handle(&theirs, None).await.unwrap();
        assert_eq!(h.api.count("put"), 1);

        // Our own custom resource Delete removes filters: that is not undone.
        let own = trail(
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "/app/x", "filterName": "ours"}),
            "subscriber",
        );
        h.handle(&own, None).await.unwrap();
        assert_eq!(h.api.count("put"), 1);
    }

    #[tokio::test]
    async fn deleted_filter_on_a_deleted_group_is_not_restored() {
        let h = handler(FakeLogs::with_groups(&[]));
        let event = trail(
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "/gone", "filterName": "ours"}),
            "alice",
        );
        let outcome = h.handle(&event, None).await.unwrap();
        assert_eq!(outcome.summary.vanished, 1);
        assert_eq!(h.api.count("put"), 0);
    }

    #[tokio::test]
    async fn in_the_account_mode_new_groups_are_covered_and_deletions_left_alone() {
        let mut h = handler(FakeLogs::with_groups(&["/app/x"]));
        h.settings.mode = Mode::Account;
        h.handle(&custom("Create"), None).await.unwrap();
        assert!(h.api.account_policies.lock().unwrap().contains_key("ours"));
        assert!(h.api.filters("/app/x").is_empty(), "no per-group filter");
        let created = trail(
            "CreateLogGroup",
            json!({"logGroupName": "/app/new"}),
            "alice",
        );
        let outcome = h.handle(&created, None).await.unwrap();
        assert_eq!(outcome.action, "new_group_under_account_policy");
        assert_eq!(h.api.count("put"), 0);
        let deleted = trail(
            "DeleteSubscriptionFilter",
            json!({"logGroupName": "/app/x", "filterName": "ours"}),
            "mallory",
        );
        let outcome = h.handle(&deleted, None).await.unwrap();
        assert_eq!(outcome.action, "ignored");
        assert_eq!(h.api.count("put"), 0);
        h.handle(&custom("Delete"), None).await.unwrap();
        assert!(
            h.api.account_policies.lock().unwrap().is_empty(),
            "Delete removes the policy"
        );
    }

    fn custom(kind: &str) -> Value {
        json!({
            "RequestType": kind, "ResponseURL": "http://responses/1", "StackId": "stack",
            "RequestId": "req", "LogicalResourceId": "Backfill", "ResourceType": "Custom::Backfill"
        })
    }

    #[tokio::test]
    async fn custom_resource_create_and_delete_answer() {
        let h = handler(FakeLogs::with_groups(&["/a", "/b"]));
        h.handle(&custom("Create"), None).await.unwrap();
        assert_eq!(h.api.filters("/a").len(), 1);
        h.handle(&custom("Delete"), None).await.unwrap();
        assert!(h.api.filters("/a").is_empty());
        let sent = h.responder.0.lock().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].0, "http://responses/1");
        assert_eq!(sent[0].1.status, Status::Success);
        assert_eq!(sent[0].1.data["Subscribed"], "2");
        assert_eq!(sent[1].1.data["Removed"], "2");
    }

    #[tokio::test]
    async fn custom_resource_update_with_a_new_filter_name_replaces_the_old_filters() {
        let api = FakeLogs::with_groups(&["/a", "/b"]);
        api.add_filter("/a", "old-name", DEST);
        api.add_filter("/a", "theirs", "x");
        let h = handler(api);
        let mut update = custom("Update");
        update["ResourceProperties"] = json!({"FilterName": "ours"});
        update["OldResourceProperties"] = json!({"FilterName": "old-name"});
        h.handle(&update, None).await.unwrap();
        let names =
            |g: &str| -> Vec<String> { h.api.filters(g).into_iter().map(|f| f.name).collect() };
        assert_eq!(names("/a"), vec!["theirs".to_owned(), "ours".to_owned()]);
        assert_eq!(names("/b"), vec!["ours".to_owned()]);
        let sent = h.responder.0.lock().unwrap();
        assert_eq!(sent[0].1.status, Status::Success);
        assert_eq!(sent[0].1.data["Removed"], "1");
        assert_eq!(sent[0].1.data["LogGroups"], "2");
    }

    #[tokio::test]
    async fn custom_resource_out_of_time_answers_success_and_says_so() {
        let h = handler(FakeLogs::with_groups(&["/a", "/b"]));
        // Less time than the reserve for the answer: no group is started.
        h.handle(&custom("Create"), Some(Duration::from_secs(5)))
            .await
            .unwrap();
        let sent = h.responder.0.lock().unwrap();
        assert_eq!(sent[0].1.status, Status::Success);
        assert!(
            sent[0].1.reason.contains("time ran out"),
            "{}",
            sent[0].1.reason
        );
        assert_eq!(h.api.count("put"), 0);
    }

    #[tokio::test]
    async fn a_few_failed_groups_do_not_fail_the_stack() {
        let mut api = FakeLogs::with_groups(&["/a", "/b"]);
        api.broken = vec!["/a".into()];
        let h = handler(api);
        h.handle(&custom("Create"), None).await.unwrap();
        let sent = h.responder.0.lock().unwrap();
        assert_eq!(sent[0].1.status, Status::Success);
        assert!(
            sent[0].1.reason.contains("1 of 2 log groups failed"),
            "{}",
            sent[0].1.reason
        );
        assert_eq!(sent[0].1.data["Failures"], "1");
    }

    #[tokio::test]
    async fn custom_resource_failure_is_answered() {
        let mut api = FakeLogs::with_groups(&["/a"]);
        api.listing_fails = true;
        let h = handler(api);
        assert!(h.handle(&custom("Create"), None).await.is_ok());
        let mut bad = custom("Create");
        bad["RequestType"] = json!("Explode");
        assert!(h.handle(&bad, None).await.is_err());
        let sent = h.responder.0.lock().unwrap();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].1.status, Status::Failed);
        assert!(
            sent[0].1.reason.contains("AccessDenied"),
            "{}",
            sent[0].1.reason
        );
        assert_eq!(sent[1].1.status, Status::Failed);
    }
}
