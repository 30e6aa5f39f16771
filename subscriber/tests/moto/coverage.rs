//! Coverage across an emulated organization: a management account and three member accounts,
//! entered by assuming a role in each.

use crate::support::{REGION, TestAccount};
use crate::{FILTER, fast_limits, options, settings};
use aws_credential_types::provider::ProvideCredentials;
use aws_sdk_organizations as orgs;
use subscriber::coverage::{self, AccountAccess, AwsOrganization, StsAccess};

const READ_ROLE: &str = "SecurityLogsRead";
const COLLECTOR: &str = "org-security-logs-collector";

/// moto lets any AssumeRole succeed (it enforces no trust policy), so the one refusal of this
/// test is emulated here, at the trait the report uses, with the error text AWS gives.
struct DenyOne<X> {
    inner: X,
    denied: String,
}

impl<X: AccountAccess> AccountAccess for DenyOne<X> {
    type Session = X::Session;
    type Logs = X::Logs;

    async fn enter(&self, account: &str) -> Result<X::Session, String> {
        if account == self.denied {
            return Err(format!(
                "AssumeRole arn:aws:iam::{account}:role/{READ_ROLE}: AccessDenied: User is not authorized to perform: sts:AssumeRole"
            ));
        }
        self.inner.enter(account).await
    }

    fn logs(&self, session: &X::Session, region: &str) -> X::Logs {
        self.inner.logs(session, region)
    }
}

async fn member(org: &orgs::Client, name: &str) -> TestAccount {
    let created = org
        .create_account()
        .email(format!("{name}@example.com"))
        .account_name(name)
        .send()
        .await
        .expect("moto CreateAccount");
    let id = created
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("account id")
        .to_owned();
    TestAccount::enter(&id).await
}

#[tokio::test]
async fn coverage_across_three_accounts_with_one_denied() {
    let management = TestAccount::new().await;
    let org = orgs::Client::new(&management.config);
    org.create_organization()
        .feature_set(orgs::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("moto CreateOrganization");
    let (a, b, c) = (
        member(&org, "workloads-a").await,
        member(&org, "workloads-b").await,
        member(&org, "sandbox-c").await,
    );

    // a: 3 groups, 2 subscribed, plus the collector's own group.
    let collector_a = a.create_function(COLLECTOR).await;
    a.create_groups(
        &[
            "/a/1",
            "/a/2",
            "/a/3",
            "/aws/lambda/org-security-logs-collector",
        ]
        .map(String::from),
    )
    .await;
    a.put_filter("/a/1", FILTER, &collector_a).await;
    a.put_filter("/a/2", FILTER, &collector_a).await;
    // b: one subscribed, one whose two slots are taken, one excluded.
    let collector_b = b.create_function(COLLECTOR).await;
    let team_b = b.create_function("team-consumer").await;
    b.create_groups(&["/b/1", "/b/full", "/excluded/b"].map(String::from))
        .await;
    b.put_filter("/b/1", FILTER, &collector_b).await;
    b.put_filter("/b/full", "team-1", &team_b).await;
    b.put_filter("/b/full", "team-2", &team_b).await;
    // c: one group, not subscribed (only visible when c can be entered).
    c.create_groups(&["/c/1".to_owned()]).await;

    let template = format!("arn:aws:lambda:{{region}}:{{account}}:function:{COLLECTOR}");
    let settings = settings(&template, Some("^/excluded/"));
    let access = DenyOne {
        inner: StsAccess::new(&management.config, READ_ROLE, "aws", fast_limits()),
        denied: c.id.clone(),
    };
    let report = coverage::coverage(
        &AwsOrganization::new(&management.config),
        &access,
        &settings,
        &[REGION.to_owned()],
        None,
        options(),
    )
    .await
    .expect("report");

    let row = |id: &str| {
        report
            .rows
            .iter()
            .find(|r| r.account_id == id)
            .unwrap_or_else(|| panic!("row for {id}: {report:#?}"))
    };
    let ra = row(&a.id);
    assert_eq!(
        (
            ra.account_name.as_str(),
            ra.log_groups,
            ra.subscribed,
            ra.missing,
            ra.excluded,
            ra.conflicts
        ),
        ("workloads-a", 4, 2, 1, 1, 0)
    );
    assert!((ra.coverage_percent - 66.67).abs() < 0.001);
    let rb = row(&b.id);
    assert_eq!(
        (
            rb.log_groups,
            rb.subscribed,
            rb.missing,
            rb.excluded,
            rb.conflicts
        ),
        (3, 1, 0, 1, 1)
    );
    assert_eq!(rb.coverage_percent, 50.0);
    let rm = row(&management.id);
    assert_eq!((rm.log_groups, rm.coverage_percent), (0, 100.0));
    assert_eq!(report.rows.len(), 3);
    assert_eq!(report.unreachable.len(), 1);
    assert_eq!(report.unreachable[0].account_id, c.id);
    assert_eq!(report.unreachable[0].account_name, "sandbox-c");
    assert!(report.unreachable[0].reason.contains("AccessDenied"));
    let t = &report.totals;
    assert_eq!((t.accounts, t.accounts_entered), (4, 3));
    assert_eq!(
        (
            t.log_groups,
            t.subscribed,
            t.missing,
            t.excluded,
            t.conflicts
        ),
        (7, 3, 1, 2, 1)
    );
    assert_eq!(t.coverage_percent, Some(60.0));
    assert!(!t.complete, "sandbox-c could not be read");

    let table = coverage::render_table(&report);
    assert!(table.contains("3 of 4 accounts read, 7 log groups, 3 subscribed, 1 missing, 2 excluded, 1 conflicts, 0 failures; coverage 60.00%"), "{table}");
    assert!(
        table.contains(&format!("{} (sandbox-c): AssumeRole", c.id)),
        "{table}"
    );

    // One organizational unit (with a nested one): only the accounts below it.
    let root = org
        .list_roots()
        .send()
        .await
        .expect("moto ListRoots")
        .roots()
        .first()
        .and_then(|r| r.id())
        .expect("root id")
        .to_owned();
    let workloads = tests::organizational_unit(&org, &root, "workloads").await;
    let nested = tests::organizational_unit(&org, &workloads, "workloads-eu").await;
    for (account, target) in [(&a.id, &workloads), (&b.id, &nested)] {
        org.move_account()
            .account_id(account)
            .source_parent_id(&root)
            .destination_parent_id(target)
            .send()
            .await
            .expect("moto MoveAccount");
    }
    let in_unit = coverage::coverage(
        &AwsOrganization::new(&management.config),
        &access,
        &settings,
        &[REGION.to_owned()],
        Some(&workloads),
        options(),
    )
    .await
    .expect("report for the unit");
    let mut ids: Vec<&str> = in_unit.rows.iter().map(|r| r.account_id.as_str()).collect();
    ids.sort();
    let mut expected = vec![a.id.as_str(), b.id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(in_unit.unreachable.is_empty());
    assert_eq!(in_unit.totals.coverage_percent, Some(60.0));
    assert!(in_unit.totals.complete);

    // The command line, acting as the management account (moto picks the account from the
    // access key), with every account reachable: 3 of 6 eligible groups subscribed.
    let credentials = management
        .config
        .credentials_provider()
        .expect("provider")
        .provide_credentials()
        .await
        .expect("credentials");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_subscriber"))
            .args(args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env("AWS_ENDPOINT_URL", tests::moto_endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
            .env(
                "AWS_SESSION_TOKEN",
                credentials.session_token().unwrap_or_default(),
            )
            .env("DESTINATION_ARN", &template)
            .env("FILTER_NAME", FILTER)
            .env("EXCLUDE_PATTERNS", "^/excluded/")
            .env("PUT_RATE_PER_SECOND", "0")
            .env("DESCRIBE_RATE_PER_SECOND", "0")
            .output()
            .expect("run the subscriber binary")
    };
    let json_run = run(&[
        "coverage",
        "--role-name",
        READ_ROLE,
        "--json",
        "--min-coverage",
        "90",
    ]);
    assert_eq!(
        json_run.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&json_run.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&json_run.stdout).expect("JSON report");
    assert_eq!(doc["totals"]["accounts_entered"], 4);
    assert_eq!(doc["totals"]["subscribed"], 3);
    assert_eq!(doc["totals"]["missing"], 2);
    assert_eq!(doc["totals"]["coverage_percent"], 50.0);
    let table_run = run(&["coverage", "--role-name", READ_ROLE, "--min-coverage", "50"]);
    assert_eq!(
        table_run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&table_run.stderr)
    );
    let table = String::from_utf8_lossy(&table_run.stdout);
    assert!(table.contains("coverage 50.00%"), "{table}");
    assert!(table.contains("workloads-a"), "{table}");

    // A unit with no account proves nothing: no percentage, and never exit 0.
    let empty = tests::organizational_unit(&org, &root, "empty").await;
    let empty_run = run(&[
        "coverage",
        "--role-name",
        READ_ROLE,
        "--json",
        "--ou",
        &empty,
    ]);
    assert_eq!(
        empty_run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&empty_run.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&empty_run.stdout).expect("JSON report");
    assert_eq!(doc["totals"]["accounts"], 0);
    assert_eq!(doc["totals"]["coverage_percent"], serde_json::Value::Null);
    assert_eq!(doc["totals"]["complete"], false);
}
