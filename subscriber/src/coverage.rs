//! Organization coverage: for every account (Organizations) and region, how many log groups carry
//! our filter, read through a role assumed in each account (STS). The counting is the reconcile's
//! dry run, so the report and the subscriber can never disagree on what "subscribed" means.

use crate::aws::{CloudWatchLogs, Limits};
use crate::reconcile::{self, LogsApi, Options, Summary};
use crate::settings::Settings;
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_organizations as orgs;
use futures::StreamExt;
use serde::Serialize;
use std::fmt::Write as _;
use std::future::Future;

/// A member account as Organizations lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("Organizations {operation} failed: {reason}")]
    Organizations {
        operation: &'static str,
        reason: String,
    },
}

/// Lists the accounts of the organization, or of one organizational unit and the units below it.
pub trait Organization: Sync {
    fn accounts(
        &self,
        parent: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Account>, CoverageError>> + Send;
}

/// Enters a member account and reads its log groups.
pub trait AccountAccess: Sync {
    type Session: Send + Sync;
    type Logs: LogsApi + Send + Sync;
    /// Err holds the reason the account cannot be entered.
    fn enter(&self, account: &str) -> impl Future<Output = Result<Self::Session, String>> + Send;
    fn logs(&self, session: &Self::Session, region: &str) -> Self::Logs;
}

/// One account and region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub log_groups: u64,
    pub subscribed: u64,
    pub missing: u64,
    pub excluded: u64,
    pub conflicts: u64,
    pub failures: u64,
    pub coverage_percent: f64,
    /// How the account and region is subscribed: `log-group` filters, or our `account`-level
    /// subscription policy.
    pub mode: crate::settings::Mode,
}

impl Row {
    fn new(account: &Account, region: &str, s: &Summary) -> Self {
        let subscribed = s.already_subscribed;
        let missing = s.subscribed + s.updated;
        Row {
            account_id: account.id.clone(),
            account_name: account.name.clone(),
            region: region.to_owned(),
            log_groups: s.groups_seen - s.vanished,
            subscribed,
            missing,
            excluded: s.excluded + s.protected,
            conflicts: s.conflicts,
            failures: s.failures,
            coverage_percent: percent(subscribed, subscribed + missing + s.conflicts + s.failures),
            mode: crate::settings::Mode::LogGroup,
        }
    }
}

/// An account (or one region of it) that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreachable {
    pub account_id: String,
    pub account_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub reason: String,
    /// A suspended or closing account: nothing runs there, so it leaves no gap in the report.
    /// Any other unreachable account or region does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inactive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub accounts: usize,
    pub accounts_entered: usize,
    pub log_groups: u64,
    pub subscribed: u64,
    pub missing: u64,
    pub excluded: u64,
    pub conflicts: u64,
    pub failures: u64,
    /// Subscribed share of the eligible log groups in the accounts that could be read; `None`
    /// when no account and region could be read, so there is nothing to measure.
    pub coverage_percent: Option<f64>,
    /// Active accounts, and regions of entered accounts, that could not be read.
    pub not_read: usize,
    /// True only when there was at least one account and every active account and region was
    /// read: a report that is not complete is no proof of coverage, whatever its percentage.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub rows: Vec<Row>,
    pub unreachable: Vec<Unreachable>,
    pub totals: Totals,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        // Two decimals are plenty for a report.
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

/// Builds the report. Accounts are read a few at a time; the order of the rows follows the
/// order of the accounts and regions.
pub async fn coverage<O: Organization, X: AccountAccess>(
    org: &O,
    access: &X,
    settings: &Settings,
    regions: &[String],
    parent: Option<&str>,
    options: Options,
) -> Result<Report, CoverageError> {
    let accounts = org.accounts(parent).await?;
    let options = Options {
        dry_run: true,
        ..options
    };
    let per_account = futures::stream::iter(accounts.iter())
        .map(|account| async move {
            let mut rows = Vec::new();
            let mut unreachable = Vec::new();
            if account.status != "ACTIVE" {
                unreachable.push(Unreachable {
                    account_id: account.id.clone(),
                    account_name: account.name.clone(),
                    region: None,
                    reason: format!("account status is {}", account.status),
                    inactive: true,
                });
                return (rows, unreachable);
            }
            let session = match access.enter(&account.id).await {
                Ok(session) => session,
                Err(reason) => {
                    tracing::warn!(account = account.id, %reason, "cannot enter account {}", account.id);
                    unreachable.push(Unreachable {
                        account_id: account.id.clone(),
                        account_name: account.name.clone(),
                        region: None,
                        reason,
                        inactive: false,
                    });
                    return (rows, unreachable);
                }
            };
            for region in regions {
                let logs = access.logs(&session, region);
                let target = settings.for_target(&account.id, region);
                // An account-level policy of ours covers the account; otherwise count per group.
                let counted = match crate::account::policy_coverage(&logs, &target).await {
                    Some(summary) => Ok((summary, crate::settings::Mode::Account)),
                    None => reconcile::reconcile(&logs, &target, options)
                        .await
                        .map(|s| (s, crate::settings::Mode::LogGroup)),
                };
                match counted {
                    Ok((summary, mode)) => rows.push(Row {
                        mode,
                        ..Row::new(account, region, &summary)
                    }),
                    Err(error) => unreachable.push(Unreachable {
                        account_id: account.id.clone(),
                        account_name: account.name.clone(),
                        region: Some(region.clone()),
                        reason: error.to_string(),
                        inactive: false,
                    }),
                }
            }
            (rows, unreachable)
        })
        .buffered(4)
        .collect::<Vec<_>>()
        .await;
    let mut rows = Vec::new();
    let mut unreachable = Vec::new();
    for (r, u) in per_account {
        rows.extend(r);
        unreachable.extend(u);
    }
    let entered = accounts
        .iter()
        .filter(|a| {
            !unreachable
                .iter()
                .any(|u| u.account_id == a.id && u.region.is_none())
        })
        .count();
    let sum = |f: fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    let (subscribed, missing, conflicts, failures) = (
        sum(|r| r.subscribed),
        sum(|r| r.missing),
        sum(|r| r.conflicts),
        sum(|r| r.failures),
    );
    let not_read = unreachable.iter().filter(|u| !u.inactive).count();
    let totals = Totals {
        accounts: accounts.len(),
        accounts_entered: entered,
        log_groups: sum(|r| r.log_groups),
        subscribed,
        missing,
        excluded: sum(|r| r.excluded),
        conflicts,
        failures,
        coverage_percent: (!rows.is_empty())
            .then(|| percent(subscribed, subscribed + missing + conflicts + failures)),
        not_read,
        complete: !rows.is_empty() && not_read == 0,
    };
    Ok(Report {
        rows,
        unreachable,
        totals,
    })
}

/// Why the report proves nothing about the organization's coverage, if it does not.
pub fn incomplete_reason(report: &Report) -> Option<String> {
    let t = &report.totals;
    if t.complete {
        return None;
    }
    Some(if t.accounts == 0 {
        "no account was found under the organization or unit asked for".to_owned()
    } else if report.rows.is_empty() {
        format!(
            "none of the {} accounts could be read in any region",
            t.accounts
        )
    } else {
        format!(
            "{} accounts or regions could not be read (listed below); the coverage counts only those that could",
            t.not_read
        )
    })
}

/// The report as a text table.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let name_width = report
        .rows
        .iter()
        .map(|r| r.account_name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 30);
    let region_width = report
        .rows
        .iter()
        .map(|r| r.region.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{:<12}  {:<name_width$}  {:<region_width$}  {:>10}  {:>10}  {:>7}  {:>8}  {:>9}  {:>8}  {:>8}",
        "ACCOUNT",
        "NAME",
        "REGION",
        "LOG GROUPS",
        "SUBSCRIBED",
        "MISSING",
        "EXCLUDED",
        "CONFLICTS",
        "FAILURES",
        "COVERAGE"
    );
    for r in &report.rows {
        let name: String = r.account_name.chars().take(name_width).collect();
        let _ = writeln!(
            out,
            "{:<12}  {:<name_width$}  {:<region_width$}  {:>10}  {:>10}  {:>7}  {:>8}  {:>9}  {:>8}  {:>7.2}%{}",
            r.account_id,
            name,
            r.region,
            r.log_groups,
            r.subscribed,
            r.missing,
            r.excluded,
            r.conflicts,
            r.failures,
            r.coverage_percent,
            if r.mode == crate::settings::Mode::Account {
                "  (account policy)"
            } else {
                ""
            }
        );
    }
    let t = &report.totals;
    let coverage = match t.coverage_percent {
        Some(p) => format!("{p:.2}%"),
        None => "unknown".to_owned(),
    };
    let _ = writeln!(
        out,
        "\nTotal: {} of {} accounts read, {} log groups, {} subscribed, {} missing, {} excluded, {} conflicts, {} failures; coverage {}",
        t.accounts_entered,
        t.accounts,
        t.log_groups,
        t.subscribed,
        t.missing,
        t.excluded,
        t.conflicts,
        t.failures,
        coverage
    );
    if let Some(why) = incomplete_reason(report) {
        let _ = writeln!(out, "INCOMPLETE: {why}");
    }
    if !report.unreachable.is_empty() {
        let _ = writeln!(out, "\nNot read:");
        for u in &report.unreachable {
            let region = u
                .region
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} ({}){region}: {}",
                u.account_id, u.account_name, u.reason
            );
        }
    }
    out
}

/// Organizations over the AWS SDK.
pub struct AwsOrganization {
    client: orgs::Client,
}

impl AwsOrganization {
    pub fn new(config: &SdkConfig) -> Self {
        AwsOrganization {
            client: orgs::Client::new(config),
        }
    }
}

fn org_error<E: std::error::Error + 'static>(operation: &'static str, e: E) -> CoverageError {
    CoverageError::Organizations {
        operation,
        reason: orgs::error::DisplayErrorContext(e).to_string(),
    }
}

fn to_account(a: &orgs::types::Account) -> Account {
    Account {
        id: a.id().unwrap_or_default().to_owned(),
        name: a.name().unwrap_or_default().to_owned(),
        status: a
            .state()
            .map(|s| s.as_str().to_owned())
            .or_else(|| a.status().map(|s| s.as_str().to_owned()))
            .unwrap_or_else(|| "ACTIVE".to_owned()),
    }
}

impl Organization for AwsOrganization {
    async fn accounts(&self, parent: Option<&str>) -> Result<Vec<Account>, CoverageError> {
        let mut accounts = Vec::new();
        let Some(parent) = parent else {
            let mut pages = self.client.list_accounts().into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| org_error("ListAccounts", e))?;
                accounts.extend(page.accounts().iter().map(to_account));
            }
            return Ok(accounts);
        };
        // The unit and every unit below it.
        let mut queue = vec![parent.to_owned()];
        while let Some(unit) = queue.pop() {
            let mut pages = self
                .client
                .list_accounts_for_parent()
                .parent_id(&unit)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| org_error("ListAccountsForParent", e))?;
                accounts.extend(page.accounts().iter().map(to_account));
            }
            let mut children = self
                .client
                .list_children()
                .parent_id(&unit)
                .child_type(orgs::types::ChildType::OrganizationalUnit)
                .into_paginator()
                .send();
            while let Some(page) = children.next().await {
                let page = page.map_err(|e| org_error("ListChildren", e))?;
                queue.extend(
                    page.children()
                        .iter()
                        .filter_map(|c| c.id().map(str::to_owned)),
                );
            }
        }
        Ok(accounts)
    }
}

/// Enters accounts by assuming `arn:<partition>:iam::<account>:role/<role_name>`.
pub struct StsAccess {
    base: SdkConfig,
    sts: aws_sdk_sts::Client,
    role_name: String,
    partition: String,
    limits: Limits,
}

impl StsAccess {
    pub fn new(base: &SdkConfig, role_name: &str, partition: &str, limits: Limits) -> Self {
        StsAccess {
            base: base.clone(),
            sts: aws_sdk_sts::Client::new(base),
            role_name: role_name.to_owned(),
            partition: partition.to_owned(),
            limits,
        }
    }
}

impl AccountAccess for StsAccess {
    type Session = SdkConfig;
    type Logs = CloudWatchLogs;

    async fn enter(&self, account: &str) -> Result<SdkConfig, String> {
        let role = format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition, self.role_name
        );
        let answer = self
            .sts
            .assume_role()
            .role_arn(&role)
            .role_session_name("subscriber-coverage")
            .send()
            .await
            .map_err(|e| {
                format!(
                    "AssumeRole {role}: {}",
                    aws_sdk_sts::error::DisplayErrorContext(e)
                )
            })?;
        let c = answer
            .credentials()
            .ok_or_else(|| format!("AssumeRole {role}: the answer holds no credentials"))?;
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "subscriber-coverage",
        );
        Ok(self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build())
    }

    fn logs(&self, session: &SdkConfig, region: &str) -> CloudWatchLogs {
        let config = session
            .to_builder()
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        CloudWatchLogs::new(&config, self.limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fake::FakeLogs;
    use crate::settings::RawSettings;
    use std::collections::HashMap;

    struct FakeOrg(Vec<Account>);

    impl Organization for FakeOrg {
        async fn accounts(&self, _parent: Option<&str>) -> Result<Vec<Account>, CoverageError> {
            Ok(self.0.clone())
        }
    }

    /// Log groups per account: (name, has our filter).
    struct FakeAccess(HashMap<String, Vec<(&'static str, bool)>>);

    impl AccountAccess for FakeAccess {
        type Session = String;
        type Logs = FakeLogs;
        async fn enter(&self, account: &str) -> Result<String, String> {
            if self.0.contains_key(account) {
                Ok(account.to_owned())
            } else {
                Err("AccessDenied".into())
            }
        }
        fn logs(&self, session: &String, _region: &str) -> FakeLogs {
            let fake = FakeLogs::default();
            for (group, subscribed) in &self.0[session] {
                fake.groups
                    .lock()
                    .unwrap()
                    .insert((*group).to_owned(), Vec::new());
                if *subscribed {
                    let dest = format!("arn:aws:lambda:us-east-1:{session}:function:collector");
                    fake.add_filter(group, "ours", &dest);
                }
            }
            fake
        }
    }

    /// One account covered by our account-level policy (one group excluded by it), one by
    /// per-group filters (one group missing).
    struct MixedAccess;

    impl AccountAccess for MixedAccess {
        type Session = String;
        type Logs = FakeLogs;
        async fn enter(&self, account: &str) -> Result<String, String> {
            Ok(account.to_owned())
        }
        fn logs(&self, session: &String, _region: &str) -> FakeLogs {
            let fake = FakeLogs::with_groups(&["/a", "/b", "/noisy"]);
            let dest = format!("arn:aws:lambda:us-east-1:{session}:function:collector");
            if session == "111111111111" {
                fake.account_policies.lock().unwrap().insert(
                    "ours".into(),
                    crate::account::AccountPolicy {
                        name: "ours".into(),
                        document: serde_json::json!({"DestinationArn": dest}).to_string(),
                        selection_criteria: crate::account::selection_criteria(&[
                            "/aws/lambda/collector".into(),
                            "/noisy".into(),
                        ]),
                    },
                );
            } else {
                fake.add_filter("/a", "ours", &dest);
                fake.add_filter("/noisy", "ours", &dest);
            }
            fake
        }
    }

    #[tokio::test]
    async fn an_account_covered_by_the_account_policy_counts_every_group_it_does_not_exclude() {
        let org = FakeOrg(vec![
            account("111111111111", "ACTIVE"),
            account("222222222222", "ACTIVE"),
        ]);
        let settings = Settings::new(RawSettings {
            filter_name: "ours".into(),
            destination_arn: "arn:aws:lambda:{region}:{account}:function:collector".into(),
            exclude: Some("^/noisy$".into()),
            ..RawSettings::default()
        })
        .unwrap();
        let report = coverage(
            &org,
            &MixedAccess,
            &settings,
            &["us-east-1".to_owned()],
            None,
            Options::default(),
        )
        .await
        .unwrap();
        let by_policy = &report.rows[0];
        assert_eq!(by_policy.mode, crate::settings::Mode::Account);
        assert_eq!(
            (by_policy.subscribed, by_policy.missing, by_policy.excluded),
            (2, 0, 1)
        );
        assert_eq!(by_policy.coverage_percent, 100.0);
        let by_filters = &report.rows[1];
        assert_eq!(by_filters.mode, crate::settings::Mode::LogGroup);
        assert_eq!((by_filters.subscribed, by_filters.missing), (1, 1));
        let table = render_table(&report);
        assert!(table.contains("100.00%  (account policy)"), "{table}");
    }

    fn account(id: &str, status: &str) -> Account {
        Account {
            id: id.into(),
            name: format!("name-{id}"),
            status: status.into(),
        }
    }

    #[tokio::test]
    async fn report_counts_per_account_and_lists_the_unreachable() {
        let org = FakeOrg(vec![
            account("111111111111", "ACTIVE"),
            account("222222222222", "ACTIVE"),
            account("333333333333", "ACTIVE"),
            account("444444444444", "SUSPENDED"),
        ]);
        let mut groups = HashMap::new();
        groups.insert(
            "111111111111".to_owned(),
            vec![
                ("/a", true),
                ("/b", false),
                ("/aws/lambda/collector", false),
            ],
        );
        groups.insert("222222222222".to_owned(), vec![("/a", true)]);
        let settings = Settings::new(RawSettings {
            filter_name: "ours".into(),
            destination_arn: "arn:aws:lambda:{region}:{account}:function:collector".into(),
            ..RawSettings::default()
        })
        .unwrap();
        let report = coverage(
            &org,
            &FakeAccess(groups),
            &settings,
            &["us-east-1".to_owned()],
            None,
            Options::default(),
        )
        .await
        .unwrap();
        assert_eq!(report.rows.len(), 2);
        let first = &report.rows[0];
        assert_eq!(
            (
                first.log_groups,
                first.subscribed,
                first.missing,
                first.excluded
            ),
            (3, 1, 1, 1)
        );
        assert_eq!(first.coverage_percent, 50.0);
        assert_eq!(report.totals.accounts, 4);
        assert_eq!(report.totals.accounts_entered, 2);
        let covered = report.totals.coverage_percent.unwrap();
        assert!((covered - 66.67).abs() < 0.001);
        assert_eq!(report.unreachable.len(), 2);
        assert_eq!(
            report.totals.not_read, 1,
            "the suspended account leaves no gap"
        );
        assert!(!report.totals.complete);
        assert_eq!(report.unreachable[0].reason, "AccessDenied");
        assert_eq!(report.unreachable[1].reason, "account status is SUSPENDED");
        let table = render_table(&report);
        assert!(
            table.contains("333333333333 (name-333333333333): AccessDenied"),
            "{table}"
        );
        assert!(table.contains("coverage 66.67%"), "{table}");
        assert!(
            table.contains("INCOMPLETE: 1 accounts or regions"),
            "{table}"
        );
    }

    fn settings() -> Settings {
        Settings::new(RawSettings {
            filter_name: "ours".into(),
            destination_arn: "arn:aws:lambda:{region}:{account}:function:collector".into(),
            ..RawSettings::default()
        })
        .unwrap()
    }

    async fn report_of(org: Vec<Account>, readable: &[&str]) -> Report {
        let groups = readable
            .iter()
            .map(|id| (id.to_string(), vec![("/a", true)]))
            .collect();
        coverage(
            &FakeOrg(org),
            &FakeAccess(groups),
            &settings(),
            &["us-east-1".to_owned()],
            None,
            Options::default(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_unit_without_accounts_is_not_covered() {
        let report = report_of(Vec::new(), &[]).await;
        assert_eq!(report.totals.coverage_percent, None);
        assert!(!report.totals.complete);
        let table = render_table(&report);
        assert!(table.contains("coverage unknown"), "{table}");
        assert!(
            table.contains("INCOMPLETE: no account was found"),
            "{table}"
        );
    }

    #[tokio::test]
    async fn accounts_that_cannot_be_read_are_not_covered() {
        let report = report_of(vec![account("111111111111", "ACTIVE")], &[]).await;
        assert_eq!(report.totals.coverage_percent, None);
        assert!(!report.totals.complete);
        assert!(
            incomplete_reason(&report)
                .unwrap()
                .contains("none of the 1 accounts")
        );
    }

    #[tokio::test]
    async fn every_account_read_is_complete() {
        let report = report_of(
            vec![
                account("111111111111", "ACTIVE"),
                account("222222222222", "SUSPENDED"),
            ],
            &["111111111111"],
        )
        .await;
        assert_eq!(report.totals.coverage_percent, Some(100.0));
        assert!(report.totals.complete);
        assert_eq!(incomplete_reason(&report), None);
    }
}
