//! Account-level mode: one subscription filter policy for the whole account and region
//! (CloudWatch Logs `PutAccountPolicy`, type `SUBSCRIPTION_FILTER_POLICY`) instead of a filter
//! on every log group. Log groups created later are covered the moment they exist, and the two
//! filter slots of every group stay free for other teams.
//!
//! What it cannot do, and what this module does about it:
//! - Selection criteria only *exclude*, by exact name (`LogGroupName NOT IN [...]`, at most
//!   [`MAX_CRITERIA_BYTES`] of text). The pipeline's own groups (the loop guard) and the groups that
//!   match the exclude patterns are listed by name; include patterns are refused
//!   ([`crate::settings::SettingsError::IncludeInAccountMode`]). A group created later that matches
//!   an exclude pattern is added to the list when its CreateLogGroup event arrives, and by every
//!   scheduled reconcile.
//! - An account has one such policy: one of another name (another team's) is reported, never
//!   replaced.
//!
//! Switching modes never leaves events delivered twice for good: the account mode puts the
//! policy first and then removes our filter from every group; the log-group mode subscribes
//! every group first and then deletes our policy. For the moments in between, the loader's
//! document ids (the log event's id) keep each event once in OpenSearch.

use crate::reconcile::{self, FilterSpec, LogsApi, LogsError, Options, Summary};
use crate::settings::{Mode, Settings, Skip};
use serde_json::json;

/// CloudWatch Logs takes selection criteria of at most 25 KB.
pub const MAX_CRITERIA_BYTES: usize = 25 * 1024;

/// An account policy as DescribeAccountPolicies returns it (subscription filter type only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountPolicy {
    pub name: String,
    /// The policy document, JSON text.
    pub document: String,
    pub selection_criteria: Option<String>,
}

/// The policy document of our filter.
pub fn policy_document(spec: &FilterSpec) -> String {
    let mut doc = json!({
        "DestinationArn": spec.destination_arn,
        "FilterPattern": spec.pattern,
        "Distribution": "Random",
    });
    if let Some(role) = &spec.role_arn {
        doc["RoleArn"] = json!(role);
    }
    doc.to_string()
}

/// `LogGroupName NOT IN ["a", "b"]` (names as JSON strings, so quotes and backslashes are
/// escaped), or `None` for no exclusion.
pub fn selection_criteria(excluded: &[String]) -> Option<String> {
    if excluded.is_empty() {
        return None;
    }
    let names: Vec<String> = excluded.iter().map(|n| json!(n).to_string()).collect();
    Some(format!("LogGroupName NOT IN [{}]", names.join(", ")))
}

/// The names in a selection criteria string this module wrote (or an equivalent one).
pub fn excluded_names(criteria: &str) -> Vec<String> {
    let Some(list) = criteria
        .split_once('[')
        .and_then(|(_, rest)| rest.rsplit_once(']'))
        .map(|(list, _)| format!("[{list}]"))
    else {
        return Vec::new();
    };
    serde_json::from_str(&list).unwrap_or_default()
}

/// Why the account-level policy could not be put.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountModeError {
    #[error(
        "{count} log groups must be excluded from the account-level subscription policy, {bytes} bytes of selection criteria, more than the {MAX_CRITERIA_BYTES} CloudWatch Logs accepts (first: {first}); narrow EXCLUDE_PATTERNS or use the log-group mode"
    )]
    TooManyExclusions {
        count: usize,
        bytes: usize,
        first: String,
    },
    #[error(
        "the account already has the subscription filter policy {0:?} of someone else (one per account): delete it or use the log-group mode"
    )]
    OtherPolicy(String),
    #[error(transparent)]
    Logs(#[from] LogsError),
}

impl From<AccountModeError> for LogsError {
    fn from(error: AccountModeError) -> Self {
        match error {
            AccountModeError::Logs(e) => e,
            other => LogsError::Call {
                operation: "PutAccountPolicy",
                target: "the account".into(),
                reason: other.to_string(),
            },
        }
    }
}

/// The exact names to exclude: every pipeline group named exactly (existing or not), and every
/// existing group the loop guard's prefixes or the exclude patterns match. Sorted.
pub fn exclusions(settings: &Settings, groups: &[String]) -> Vec<String> {
    let mut out: Vec<String> = settings
        .protected_groups()
        .iter()
        .filter(|p| !p.ends_with('*'))
        .cloned()
        .collect();
    out.extend(
        groups
            .iter()
            .filter(|g| settings.skip_reason(g).is_some())
            .cloned(),
    );
    out.sort();
    out.dedup();
    out
}

/// The policy this deployment wants, for the groups that exist now.
pub fn wanted_policy(
    settings: &Settings,
    groups: &[String],
) -> Result<AccountPolicy, AccountModeError> {
    let excluded = exclusions(settings, groups);
    let criteria = selection_criteria(&excluded);
    let bytes = criteria.as_ref().map_or(0, String::len);
    if bytes > MAX_CRITERIA_BYTES {
        return Err(AccountModeError::TooManyExclusions {
            count: excluded.len(),
            bytes,
            first: excluded[0].clone(),
        });
    }
    Ok(AccountPolicy {
        name: settings.filter_name.clone(),
        document: policy_document(&FilterSpec::from_settings(settings)),
        selection_criteria: criteria,
    })
}

/// Same policy: documents compared as JSON (the service may reorder keys).
fn same(a: &AccountPolicy, b: &AccountPolicy) -> bool {
    let doc = |d: &str| serde_json::from_str::<serde_json::Value>(d).ok();
    a.name == b.name
        && doc(&a.document) == doc(&b.document)
        && a.selection_criteria.as_deref().map(excluded_names)
            == b.selection_criteria.as_deref().map(excluded_names)
}

/// Puts our account policy (unless it is already as wanted) for the groups in `groups`.
async fn put_policy<A: LogsApi>(
    api: &A,
    settings: &Settings,
    groups: &[String],
    dry_run: bool,
    summary: &mut Summary,
) -> Result<(), AccountModeError> {
    let wanted = wanted_policy(settings, groups)?;
    let current = api.describe_account_policies().await?;
    if let Some(other) = current.iter().find(|p| p.name != wanted.name) {
        return Err(AccountModeError::OtherPolicy(other.name.clone()));
    }
    let action = match current.iter().find(|p| p.name == wanted.name) {
        Some(ours) if same(ours, &wanted) => "unchanged",
        Some(_) => "updated",
        None => "created",
    };
    if action != "unchanged" && !dry_run {
        api.put_account_policy(&wanted).await?;
        tracing::info!(
            policy = wanted.name,
            selection_criteria = wanted.selection_criteria.as_deref().unwrap_or(""),
            "account-level subscription policy {action}"
        );
    }
    summary.account_policy = Some(action.to_owned());
    Ok(())
}

/// The account mode's reconcile: the policy, then no filter of ours left on any group.
pub async fn reconcile_account<A: LogsApi>(
    api: &A,
    settings: &Settings,
    options: Options,
) -> Result<Summary, AccountModeError> {
    let groups = api.list_log_groups().await?;
    let mut summary = Summary {
        dry_run: options.dry_run,
        ..Summary::default()
    };
    put_policy(api, settings, &groups, options.dry_run, &mut summary).await?;
    for group in &groups {
        match settings.skip_reason(group) {
            Some(skip) => summary.record_skip(&skip),
            None => summary.already_subscribed += 1,
        }
    }
    // Our per-group filters would deliver every event a second time.
    let removed = reconcile::remove_all(api, settings, options).await?;
    summary.removed = removed.removed;
    summary.failures += removed.failures;
    summary.failure_details.extend(removed.failure_details);
    summary.incomplete = removed.incomplete;
    summary.groups_seen = groups.len() as u64;
    Ok(summary)
}

/// Deletes our account policy (named by `settings`), if there is one: the log-group mode after a
/// switch, a renamed filter, the stack's Delete. A policy that exists and cannot be deleted is a
/// failure of the run (events would go on being delivered twice). Not being able to tell whether
/// one exists is a failure in the account mode; in the log-group mode, where the look is only a
/// cleanup (and an emulator may lack the API), it is logged.
pub async fn withdraw_policy<A: LogsApi>(
    api: &A,
    settings: &Settings,
    dry_run: bool,
    summary: &mut Summary,
) {
    const TARGET: &str = "the account-level subscription policy";
    let policies = match api.describe_account_policies().await {
        Ok(p) => p,
        Err(error) if settings.mode == Mode::LogGroup => {
            tracing::warn!(%error, "cannot tell whether an account-level subscription policy of ours exists");
            return;
        }
        Err(error) => return summary.record_failure(TARGET, &error),
    };
    if !policies.iter().any(|p| p.name == settings.filter_name) {
        return;
    }
    if dry_run {
        summary.account_policy = Some("would delete".to_owned());
        return;
    }
    match api.delete_account_policy(&settings.filter_name).await {
        Ok(()) => {
            tracing::info!(
                policy = settings.filter_name,
                "account-level subscription policy deleted"
            );
            summary.account_policy = Some("deleted".to_owned());
        }
        Err(error) => summary.record_failure(TARGET, &error),
    }
}

/// A reconcile in the configured mode (schedule, custom resource Create and Update, CLI).
pub async fn apply<A: LogsApi>(
    api: &A,
    settings: &Settings,
    options: Options,
) -> Result<Summary, LogsError> {
    match settings.mode {
        Mode::Account => Ok(reconcile_account(api, settings, options).await?),
        Mode::LogGroup => {
            let mut summary = reconcile::reconcile(api, settings, options).await?;
            // Every group has its filter now: the policy (an earlier account mode) goes.
            if !summary.incomplete {
                withdraw_policy(api, settings, options.dry_run, &mut summary).await;
            }
            Ok(summary)
        }
    }
}

/// Removes everything of ours: per-group filters and the account policy (custom resource Delete).
pub async fn remove<A: LogsApi>(
    api: &A,
    settings: &Settings,
    options: Options,
) -> Result<Summary, LogsError> {
    let mut summary = reconcile::remove_all(api, settings, options).await?;
    withdraw_policy(api, settings, options.dry_run, &mut summary).await;
    Ok(summary)
}

/// A new log group in account mode: covered already, unless the loop guard or an exclude
/// pattern names it, then the policy's list is brought up to date.
pub async fn new_group<A: LogsApi>(
    api: &A,
    settings: &Settings,
    group: &str,
    dry_run: bool,
) -> Result<Summary, LogsError> {
    let mut summary = Summary {
        dry_run,
        groups_seen: 1,
        ..Summary::default()
    };
    match settings.skip_reason(group) {
        None => summary.already_subscribed += 1,
        Some(skip) => {
            summary.record_skip(&skip);
            let mut groups = api.list_log_groups().await?;
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_owned());
            }
            put_policy(api, settings, &groups, dry_run, &mut summary).await?;
        }
    }
    Ok(summary)
}

/// Coverage of an account and region whose groups our account policy covers: every group not
/// excluded by it counts as subscribed. `None` when there is no policy of ours (or it cannot be
/// read): the per-group count applies.
pub async fn policy_coverage<A: LogsApi>(api: &A, settings: &Settings) -> Option<Summary> {
    let policies = api.describe_account_policies().await.ok()?;
    let ours = policies.into_iter().find(|p| {
        p.name == settings.filter_name
            && serde_json::from_str::<serde_json::Value>(&p.document)
                .ok()
                .is_some_and(|d| d["DestinationArn"] == json!(settings.destination_arn))
    })?;
    let groups = api.list_log_groups().await.ok()?;
    let excluded = ours
        .selection_criteria
        .as_deref()
        .map(excluded_names)
        .unwrap_or_default();
    let mut summary = Summary {
        dry_run: true,
        groups_seen: groups.len() as u64,
        account_policy: Some("covers the account".to_owned()),
        ..Summary::default()
    };
    for group in &groups {
        if excluded.iter().any(|e| e == group) {
            match settings.skip_reason(group) {
                Some(Skip::Protected) => summary.protected += 1,
                _ => summary.excluded += 1,
            }
        } else {
            summary.already_subscribed += 1;
        }
    }
    Some(summary)
}

#[cfg(test)]
mod tests;
