//! The reconcile logic: what to subscribe, what to leave alone, what to report. The CloudWatch
//! Logs calls sit behind [`LogsApi`], so the decisions are tested without a network.

use crate::settings::{Settings, Skip};
use futures::StreamExt;
use serde::Serialize;
use std::future::Future;
use tokio::time::Instant;

/// At most this many conflicts and failures are kept with their details in a summary; the
/// counters keep counting past it.
pub const MAX_DETAILS: usize = 50;

/// A subscription filter as DescribeSubscriptionFilters returns it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExistingFilter {
    pub name: String,
    pub destination_arn: String,
    pub filter_pattern: String,
    pub role_arn: Option<String>,
}

/// The filter we want on a log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterSpec {
    pub name: String,
    pub pattern: String,
    pub destination_arn: String,
    pub role_arn: Option<String>,
}

impl FilterSpec {
    pub fn from_settings(settings: &Settings) -> Self {
        FilterSpec {
            name: settings.filter_name.clone(),
            pattern: settings.filter_pattern.clone(),
            destination_arn: settings.destination_arn.clone(),
            role_arn: settings.role_arn.clone(),
        }
    }
}

/// Errors of the CloudWatch Logs calls, each naming the log group (or the listing) and the reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogsError {
    #[error("log group {group} does not exist")]
    NotFound { group: String },
    /// PutSubscriptionFilter refused: the group already has its maximum of filters.
    #[error("log group {group} already has the maximum number of subscription filters")]
    LimitExceeded { group: String },
    #[error("{operation} on {target} failed: {reason}")]
    Call {
        operation: &'static str,
        target: String,
        reason: String,
    },
}

/// The CloudWatch Logs calls the subscriber makes, and nothing more.
pub trait LogsApi: Sync {
    /// Every log group name of the account and region, following the pagination.
    fn list_log_groups(&self) -> impl Future<Output = Result<Vec<String>, LogsError>> + Send;
    fn describe_subscription_filters(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<ExistingFilter>, LogsError>> + Send;
    fn put_subscription_filter(
        &self,
        group: &str,
        filter: &FilterSpec,
    ) -> impl Future<Output = Result<(), LogsError>> + Send;
    fn delete_subscription_filter(
        &self,
        group: &str,
        filter_name: &str,
    ) -> impl Future<Output = Result<(), LogsError>> + Send;
    /// The account's subscription filter policies (at most one).
    fn describe_account_policies(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::account::AccountPolicy>, LogsError>> + Send;
    fn put_account_policy(
        &self,
        policy: &crate::account::AccountPolicy,
    ) -> impl Future<Output = Result<(), LogsError>> + Send;
    fn delete_account_policy(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), LogsError>> + Send;
}

/// What a log group needs, given its filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Our filter is there with the right destination and pattern (or another filter already
    /// delivers to our destination): nothing to do.
    AlreadySubscribed,
    /// No filter of ours and room for one.
    Subscribe,
    /// Our filter is there with a stale destination, pattern or role: put it again.
    Update { previous_destination: String },
    /// Two filters of others and none of ours: CloudWatch Logs allows no third one.
    Conflict { filters: Vec<String> },
}

/// CloudWatch Logs allows two subscription filters per log group.
pub const MAX_FILTERS_PER_GROUP: usize = 2;

/// Decides what a log group needs. Pure.
pub fn plan(spec: &FilterSpec, existing: &[ExistingFilter]) -> Plan {
    if let Some(ours) = existing.iter().find(|f| f.name == spec.name) {
        let same_role =
            ours.role_arn.as_deref().unwrap_or("") == spec.role_arn.as_deref().unwrap_or("");
        if ours.destination_arn == spec.destination_arn
            && ours.filter_pattern == spec.pattern
            && same_role
        {
            return Plan::AlreadySubscribed;
        }
        return Plan::Update {
            previous_destination: ours.destination_arn.clone(),
        };
    }
    if existing
        .iter()
        .any(|f| f.destination_arn == spec.destination_arn)
    {
        // Someone subscribed it to the collector under another name: a second filter to the same
        // destination would deliver every event twice.
        return Plan::AlreadySubscribed;
    }
    if existing.len() >= MAX_FILTERS_PER_GROUP {
        return Plan::Conflict {
            filters: existing.iter().map(|f| f.name.clone()).collect(),
        };
    }
    Plan::Subscribe
}

/// A log group we could not give our filter because two others hold the slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub log_group: String,
    pub filters: Vec<String>,
}

/// A log group whose calls failed after the retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub log_group: String,
    pub reason: String,
}

/// The outcome of a run: one JSON log line, the metrics, and the CLI's output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub groups_seen: u64,
    /// Filters put on groups that had none of ours (in a dry run: that would be put).
    pub subscribed: u64,
    /// Filters of ours with a stale destination, pattern or role, put again.
    pub updated: u64,
    pub already_subscribed: u64,
    /// Skipped by the exclude/include lists or the loop guard.
    pub excluded: u64,
    pub protected: u64,
    pub conflicts: u64,
    pub failures: u64,
    /// Filters of ours removed (custom resource Delete).
    pub removed: u64,
    /// Groups deleted between the listing and the describe call.
    pub vanished: u64,
    /// The run stopped at its deadline before every listed group was handled.
    pub incomplete: bool,
    /// What happened to our account-level subscription policy (created, updated, unchanged,
    /// deleted), when there was one to handle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_policy: Option<String>,
    pub conflict_details: Vec<Conflict>,
    pub failure_details: Vec<Failure>,
}

impl Summary {
    pub(crate) fn merge(&mut self, other: Summary) {
        self.groups_seen += other.groups_seen;
        self.subscribed += other.subscribed;
        self.updated += other.updated;
        self.already_subscribed += other.already_subscribed;
        self.excluded += other.excluded;
        self.protected += other.protected;
        self.conflicts += other.conflicts;
        self.failures += other.failures;
        self.removed += other.removed;
        self.vanished += other.vanished;
        if other.account_policy.is_some() {
            self.account_policy = other.account_policy;
        }
        for c in other.conflict_details {
            if self.conflict_details.len() < MAX_DETAILS {
                self.conflict_details.push(c);
            }
        }
        for f in other.failure_details {
            if self.failure_details.len() < MAX_DETAILS {
                self.failure_details.push(f);
            }
        }
    }

    pub(crate) fn record_conflict(&mut self, group: &str, filters: Vec<String>) {
        tracing::warn!(
            log_group = group,
            existing_filters = ?filters,
            "log group {group} already has two subscription filters of others ({}); ours is not added",
            filters.join(", ")
        );
        self.conflicts += 1;
        if self.conflict_details.len() < MAX_DETAILS {
            self.conflict_details.push(Conflict {
                log_group: group.to_owned(),
                filters,
            });
        }
    }

    pub(crate) fn record_failure(&mut self, group: &str, error: &LogsError) {
        tracing::error!(log_group = group, %error, "log group {group} not handled");
        self.failures += 1;
        if self.failure_details.len() < MAX_DETAILS {
            self.failure_details.push(Failure {
                log_group: group.to_owned(),
                reason: error.to_string(),
            });
        }
    }

    pub(crate) fn record_skip(&mut self, skip: &Skip) {
        match skip {
            Skip::Protected => self.protected += 1,
            Skip::Excluded | Skip::NotIncluded => self.excluded += 1,
        }
    }

    /// Emits the summary as one structured log line and as metrics.
    pub fn emit(&self, run: &str, metrics: &mut shared::metrics::Metrics) {
        let json = serde_json::to_string(self).unwrap_or_default();
        tracing::info!(
            run,
            groups_seen = self.groups_seen,
            subscribed = self.subscribed,
            updated = self.updated,
            already_subscribed = self.already_subscribed,
            excluded = self.excluded,
            protected = self.protected,
            conflicts = self.conflicts,
            failures = self.failures,
            removed = self.removed,
            dry_run = self.dry_run,
            incomplete = self.incomplete,
            summary = %json,
            "{run} finished"
        );
        for (name, value) in [
            ("LogGroupsSeen", self.groups_seen),
            ("LogGroupsSubscribed", self.subscribed),
            ("SubscriptionsUpdated", self.updated),
            ("LogGroupsAlreadySubscribed", self.already_subscribed),
            ("LogGroupsExcluded", self.excluded + self.protected),
            ("SubscriptionConflicts", self.conflicts),
            ("SubscriptionFailures", self.failures),
            ("SubscriptionsRemoved", self.removed),
        ] {
            metrics.count(name, value);
        }
        metrics.flush();
    }
}

/// How a reconcile runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub dry_run: bool,
    /// Log groups handled at once; the rate limits of the [`LogsApi`] still apply.
    pub concurrency: usize,
    /// No group is started after this instant (a Lambda function's time is limited). A run with
    /// a deadline starts at a random point of the listing, so runs cut short still reach every
    /// group over time.
    pub deadline: Option<Instant>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dry_run: false,
            concurrency: 8,
            deadline: None,
        }
    }
}

impl Options {
    fn before_deadline(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
    }

    /// The order to walk `groups` in: as listed, or from a random point when a deadline may cut
    /// the run short.
    fn order<'a>(&self, groups: &'a [String]) -> Vec<&'a String> {
        let start = if self.deadline.is_some() && !groups.is_empty() {
            fastrand::usize(..groups.len())
        } else {
            0
        };
        groups[start..].iter().chain(&groups[..start]).collect()
    }
}

/// Brings one log group in line: at most one DescribeSubscriptionFilters and one
/// PutSubscriptionFilter.
pub async fn reconcile_group<A: LogsApi>(
    api: &A,
    settings: &Settings,
    spec: &FilterSpec,
    group: &str,
    dry_run: bool,
) -> Summary {
    let mut summary = Summary {
        dry_run,
        groups_seen: 1,
        ..Summary::default()
    };
    if let Some(skip) = settings.skip_reason(group) {
        summary.record_skip(&skip);
        return summary;
    }
    let existing = match api.describe_subscription_filters(group).await {
        Ok(existing) => existing,
        Err(LogsError::NotFound { .. }) => {
            summary.vanished += 1;
            return summary;
        }
        Err(error) => {
            summary.record_failure(group, &error);
            return summary;
        }
    };
    match plan(spec, &existing) {
        Plan::AlreadySubscribed => summary.already_subscribed += 1,
        Plan::Conflict { filters } => summary.record_conflict(group, filters),
        Plan::Subscribe if dry_run => summary.subscribed += 1,
        Plan::Update { .. } if dry_run => summary.updated += 1,
        plan @ (Plan::Subscribe | Plan::Update { .. }) => {
            match api.put_subscription_filter(group, spec).await {
                Ok(()) => {
                    if let Plan::Update {
                        previous_destination,
                    } = plan
                    {
                        tracing::info!(
                            log_group = group,
                            previous_destination,
                            destination = spec.destination_arn,
                            "updated a stale subscription filter on {group}"
                        );
                        summary.updated += 1;
                    } else {
                        tracing::debug!(log_group = group, "subscribed {group}");
                        summary.subscribed += 1;
                    }
                }
                Err(LogsError::LimitExceeded { .. }) => summary
                    .record_conflict(group, existing.iter().map(|f| f.name.clone()).collect()),
                Err(LogsError::NotFound { .. }) => summary.vanished += 1,
                Err(error) => summary.record_failure(group, &error),
            }
        }
    }
    summary
}

/// Walks every log group and subscribes the ones that lack our filter. Fails only when the
/// listing itself fails; a group that fails is counted and the run goes on.
pub async fn reconcile<A: LogsApi>(
    api: &A,
    settings: &Settings,
    options: Options,
) -> Result<Summary, LogsError> {
    let groups = api.list_log_groups().await?;
    let spec = FilterSpec::from_settings(settings);
    let mut total = Summary {
        dry_run: options.dry_run,
        ..Summary::default()
    };
    let mut results = futures::stream::iter(options.order(&groups))
        .take_while(|_| std::future::ready(options.before_deadline()))
        .map(|group| reconcile_group(api, settings, &spec, group, options.dry_run))
        .buffer_unordered(options.concurrency.max(1));
    while let Some(one) = results.next().await {
        total.merge(one);
    }
    total.incomplete = total.groups_seen < groups.len() as u64;
    Ok(total)
}

/// Removes our filter (by name) from every log group: the custom resource's Delete.
pub async fn remove_all<A: LogsApi>(
    api: &A,
    settings: &Settings,
    options: Options,
) -> Result<Summary, LogsError> {
    let groups = api.list_log_groups().await?;
    let mut total = Summary {
        dry_run: options.dry_run,
        ..Summary::default()
    };
    let name = settings.filter_name.as_str();
    let mut results = futures::stream::iter(groups.iter())
        .take_while(|_| std::future::ready(options.before_deadline()))
        .map(|group| async move {
            let mut summary = Summary {
                groups_seen: 1,
                ..Summary::default()
            };
            match api.describe_subscription_filters(group).await {
                Ok(filters) if filters.iter().any(|f| f.name == name) => {
                    if options.dry_run {
                        summary.removed += 1;
                        return summary;
                    }
                    match api.delete_subscription_filter(group, name).await {
                        Ok(()) | Err(LogsError::NotFound { .. }) => summary.removed += 1,
                        Err(error) => summary.record_failure(group, &error),
                    }
                }
                Ok(_) => {}
                Err(LogsError::NotFound { .. }) => summary.vanished += 1,
                Err(error) => summary.record_failure(group, &error),
            }
            summary
        })
        .buffer_unordered(options.concurrency.max(1));
    while let Some(one) = results.next().await {
        total.merge(one);
    }
    total.incomplete = total.groups_seen < groups.len() as u64;
    Ok(total)
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory CloudWatch Logs for the unit tests.
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct FakeLogs {
        pub groups: Mutex<BTreeMap<String, Vec<ExistingFilter>>>,
        pub calls: Mutex<Vec<String>>,
        /// Groups whose describe call fails.
        pub broken: Vec<String>,
        pub listing_fails: bool,
        /// Account policies by name.
        pub account_policies: Mutex<BTreeMap<String, crate::account::AccountPolicy>>,
        /// The account policy API answers like an emulator without it.
        pub no_account_policies: bool,
        /// DeleteAccountPolicy is refused (access denied).
        pub refuse_policy_delete: Mutex<bool>,
    }

    impl FakeLogs {
        pub fn with_groups(names: &[&str]) -> Self {
            let fake = FakeLogs::default();
            {
                let mut groups = fake.groups.lock().unwrap();
                for n in names {
                    groups.insert((*n).to_owned(), Vec::new());
                }
            }
            fake
        }

        pub fn add_filter(&self, group: &str, name: &str, destination: &str) {
            self.groups
                .lock()
                .unwrap()
                .entry(group.to_owned())
                .or_default()
                .push(ExistingFilter {
                    name: name.into(),
                    destination_arn: destination.into(),
                    ..ExistingFilter::default()
                });
        }

        pub fn filters(&self, group: &str) -> Vec<ExistingFilter> {
            self.groups
                .lock()
                .unwrap()
                .get(group)
                .cloned()
                .unwrap_or_default()
        }

        pub fn count(&self, call: &str) -> usize {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|c| *c == call)
                .count()
        }
    }

    impl LogsApi for FakeLogs {
        async fn list_log_groups(&self) -> Result<Vec<String>, LogsError> {
            self.calls.lock().unwrap().push("list".into());
            if self.listing_fails {
                return Err(LogsError::Call {
                    operation: "DescribeLogGroups",
                    target: "the account's log groups".into(),
                    reason: "AccessDeniedException: not allowed".into(),
                });
            }
            Ok(self.groups.lock().unwrap().keys().cloned().collect())
        }

        async fn describe_subscription_filters(
            &self,
            group: &str,
        ) -> Result<Vec<ExistingFilter>, LogsError> {
            self.calls.lock().unwrap().push("describe".into());
            if self.broken.iter().any(|b| b == group) {
                return Err(LogsError::Call {
                    operation: "DescribeSubscriptionFilters",
                    target: group.into(),
                    reason: "InternalFailure".into(),
                });
            }
            self.groups
                .lock()
                .unwrap()
                .get(group)
                .cloned()
                .ok_or_else(|| LogsError::NotFound {
                    group: group.into(),
                })
        }

        async fn put_subscription_filter(
            &self,
            group: &str,
            filter: &FilterSpec,
        ) -> Result<(), LogsError> {
            self.calls.lock().unwrap().push("put".into());
            let mut groups = self.groups.lock().unwrap();
            let filters = groups.get_mut(group).ok_or_else(|| LogsError::NotFound {
                group: group.into(),
            })?;
            let new = ExistingFilter {
                name: filter.name.clone(),
                destination_arn: filter.destination_arn.clone(),
                filter_pattern: filter.pattern.clone(),
                role_arn: filter.role_arn.clone(),
            };
            if let Some(existing) = filters.iter_mut().find(|f| f.name == filter.name) {
                *existing = new;
            } else if filters.len() >= MAX_FILTERS_PER_GROUP {
                return Err(LogsError::LimitExceeded {
                    group: group.into(),
                });
            } else {
                filters.push(new);
            }
            Ok(())
        }

        async fn delete_subscription_filter(
            &self,
            group: &str,
            filter_name: &str,
        ) -> Result<(), LogsError> {
            self.calls.lock().unwrap().push("delete".into());
            let mut groups = self.groups.lock().unwrap();
            let filters = groups.get_mut(group).ok_or_else(|| LogsError::NotFound {
                group: group.into(),
            })?;
            filters.retain(|f| f.name != filter_name);
            Ok(())
        }

        async fn describe_account_policies(
            &self,
        ) -> Result<Vec<crate::account::AccountPolicy>, LogsError> {
            self.calls.lock().unwrap().push("describe_policies".into());
            if self.no_account_policies {
                return Err(LogsError::Call {
                    operation: "DescribeAccountPolicies",
                    target: "the account".into(),
                    reason: "InvalidAction: not implemented".into(),
                });
            }
            Ok(self
                .account_policies
                .lock()
                .unwrap()
                .values()
                .cloned()
                .collect())
        }

        async fn put_account_policy(
            &self,
            policy: &crate::account::AccountPolicy,
        ) -> Result<(), LogsError> {
            self.calls.lock().unwrap().push("put_policy".into());
            self.account_policies
                .lock()
                .unwrap()
                .insert(policy.name.clone(), policy.clone());
            Ok(())
        }

        async fn delete_account_policy(&self, name: &str) -> Result<(), LogsError> {
            self.calls.lock().unwrap().push("delete_policy".into());
            if *self.refuse_policy_delete.lock().unwrap() {
                return Err(LogsError::Call {
                    operation: "DeleteAccountPolicy",
                    target: "the account".into(),
                    reason: "AccessDeniedException: not allowed".into(),
                });
            }
            self.account_policies.lock().unwrap().remove(name);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeLogs;
    use super::*;
    use crate::settings::RawSettings;

    const DEST: &str = "arn:aws:lambda:us-east-1:111122223333:function:collector";

    fn settings(exclude: Option<&str>) -> Settings {
        Settings::new(RawSettings {
            filter_name: "ours".into(),
            destination_arn: DEST.into(),
            function_name: Some("subscriber".into()),
            exclude: exclude.map(str::to_owned),
            ..RawSettings::default()
        })
        .unwrap()
    }

    fn filter(name: &str, dest: &str) -> ExistingFilter {
        ExistingFilter {
            name: name.into(),
            destination_arn: dest.into(),
            ..ExistingFilter::default()
        }
    }

    #[test]
    fn plan_covers_every_case() {
        let spec = FilterSpec::from_settings(&settings(None));
        assert_eq!(plan(&spec, &[]), Plan::Subscribe);
        assert_eq!(plan(&spec, &[filter("a", "x")]), Plan::Subscribe);
        assert_eq!(
            plan(&spec, &[filter("ours", DEST)]),
            Plan::AlreadySubscribed
        );
        assert_eq!(
            plan(&spec, &[filter("other-name", DEST), filter("b", "y")]),
            Plan::AlreadySubscribed
        );
        assert_eq!(
            plan(&spec, &[filter("ours", "old")]),
            Plan::Update {
                previous_destination: "old".into()
            }
        );
        assert_eq!(
            plan(&spec, &[filter("a", "x"), filter("b", "y")]),
            Plan::Conflict {
                filters: vec!["a".into(), "b".into()]
            }
        );
        let mut changed = filter("ours", DEST);
        changed.filter_pattern = "ERROR".into();
        assert!(matches!(plan(&spec, &[changed]), Plan::Update { .. }));
    }

    #[tokio::test]
    async fn reconcile_subscribes_skips_and_reports() {
        let api = FakeLogs::with_groups(&[
            "/app/a",
            "/app/b",
            "/aws/lambda/collector",
            "/aws/lambda/subscriber",
            "/debug/x",
            "/full",
            "/stale",
        ]);
        api.add_filter("/app/b", "ours", DEST);
        api.add_filter("/full", "f1", "x");
        api.add_filter("/full", "f2", "y");
        api.add_filter("/stale", "ours", "arn:old");
        let s = settings(Some("^/debug/"));
        let summary = reconcile(&api, &s, Options::default()).await.unwrap();
        assert_eq!(summary.groups_seen, 7);
        assert_eq!(summary.subscribed, 1);
        assert_eq!(summary.updated, 1);
        assert_eq!(summary.already_subscribed, 1);
        assert_eq!(summary.excluded, 1);
        assert_eq!(summary.protected, 2);
        assert_eq!(summary.conflicts, 1);
        assert_eq!(summary.failures, 0);
        assert_eq!(
            summary.conflict_details,
            vec![Conflict {
                log_group: "/full".into(),
                filters: vec!["f1".into(), "f2".into()]
            }]
        );
        assert!(api.filters("/aws/lambda/collector").is_empty());
        assert!(api.filters("/debug/x").is_empty());
        assert_eq!(api.filters("/stale")[0].destination_arn, DEST);
        // One listing, one describe per candidate, one put per group that needed it.
        assert_eq!(api.count("list"), 1);
        assert_eq!(api.count("describe"), 4);
        assert_eq!(api.count("put"), 2);

        let again = reconcile(&api, &s, Options::default()).await.unwrap();
        assert_eq!(again.subscribed + again.updated, 0);
        assert_eq!(again.already_subscribed, 3);
        assert_eq!(api.count("put"), 2);
    }

    #[tokio::test]
    async fn a_run_stops_at_its_deadline_and_says_so() {
        let api = FakeLogs::with_groups(&["/a", "/b", "/c"]);
        let past = Options {
            deadline: Some(Instant::now()),
            ..Options::default()
        };
        let summary = reconcile(&api, &settings(None), past).await.unwrap();
        assert!(summary.incomplete);
        assert_eq!(summary.groups_seen, 0);
        assert_eq!(api.count("put"), 0);
        let later = Options {
            deadline: Some(Instant::now() + std::time::Duration::from_secs(60)),
            ..Options::default()
        };
        let summary = reconcile(&api, &settings(None), later).await.unwrap();
        assert!(!summary.incomplete);
        assert_eq!(summary.subscribed, 3);
    }

    #[test]
    fn a_run_with_a_deadline_still_visits_every_group_once() {
        let groups: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let options = Options {
            deadline: Some(Instant::now()),
            ..Options::default()
        };
        let mut order: Vec<String> = options.order(&groups).into_iter().cloned().collect();
        order.sort();
        let mut expected = groups.clone();
        expected.sort();
        assert_eq!(order, expected);
    }

    #[tokio::test]
    async fn dry_run_changes_nothing() {
        let api = FakeLogs::with_groups(&["/a", "/b"]);
        let options = Options {
            dry_run: true,
            ..Options::default()
        };
        let summary = reconcile(&api, &settings(None), options).await.unwrap();
        assert_eq!(summary.subscribed, 2);
        assert_eq!(api.count("put"), 0);
        assert!(api.filters("/a").is_empty());
    }

    #[tokio::test]
    async fn a_failing_group_is_counted_and_the_run_goes_on() {
        let mut api = FakeLogs::with_groups(&["/a", "/b"]);
        api.broken = vec!["/a".into()];
        let summary = reconcile(&api, &settings(None), Options::default())
            .await
            .unwrap();
        assert_eq!(summary.failures, 1);
        assert_eq!(summary.subscribed, 1);
        assert!(summary.failure_details[0].reason.contains("/a"));
    }

    #[tokio::test]
    async fn listing_failure_fails_the_run() {
        let mut api = FakeLogs::with_groups(&["/a"]);
        api.listing_fails = true;
        let err = reconcile(&api, &settings(None), Options::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("DescribeLogGroups"), "{err}");
    }

    #[tokio::test]
    async fn remove_all_deletes_only_ours() {
        let api = FakeLogs::with_groups(&["/a", "/b"]);
        api.add_filter("/a", "ours", DEST);
        api.add_filter("/a", "theirs", "x");
        api.add_filter("/b", "theirs", "x");
        let summary = remove_all(&api, &settings(None), Options::default())
            .await
            .unwrap();
        assert_eq!(summary.removed, 1);
        assert_eq!(api.filters("/a"), vec![filter("theirs", "x")]);
        assert_eq!(api.filters("/b").len(), 1);
    }
}
