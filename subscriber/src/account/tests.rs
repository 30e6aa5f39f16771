use super::*;
use crate::reconcile::fake::FakeLogs;
use crate::settings::{RawSettings, SettingsError};

const DEST: &str = "arn:aws:lambda:eu-west-1:111122223333:function:org-security-logs-collector";

fn raw(mode: &str) -> RawSettings {
    RawSettings {
        filter_name: "org-security-logs".into(),
        destination_arn: DEST.into(),
        function_name: Some("org-security-logs-subscriber".into()),
        protected_groups: vec![
            "/aws/lambda/org-security-logs-*".into(),
            "/central/loader".into(),
        ],
        exclude: Some("^/noisy/".into()),
        mode: mode.into(),
        ..RawSettings::default()
    }
}

fn settings(mode: &str) -> Settings {
    Settings::new(raw(mode)).expect("valid settings")
}

fn account_fake() -> FakeLogs {
    let fake = FakeLogs::with_groups(&[
        "/aws/lambda/org-security-logs-collector",
        "/aws/lambda/org-security-logs-subscriber",
        "/aws/lambda/org-security-logs-extra",
        "/app/orders",
        "/app/payments",
        "/noisy/debug",
    ]);
    // The log-group mode left its filter here.
    fake.add_filter("/app/orders", "org-security-logs", DEST);
    fake
}

fn calls(fake: &FakeLogs) -> Vec<String> {
    fake.calls.lock().expect("calls").clone()
}

#[test]
fn the_document_and_the_criteria_say_what_the_api_takes() {
    let s = settings("account");
    let doc: serde_json::Value =
        serde_json::from_str(&policy_document(&FilterSpec::from_settings(&s))).expect("JSON");
    assert_eq!(doc["DestinationArn"], DEST);
    assert_eq!(doc["FilterPattern"], "");
    assert_eq!(doc["Distribution"], "Random");
    assert!(
        doc.get("RoleArn").is_none(),
        "a Lambda destination needs no role"
    );
    let names = vec!["/a".to_owned(), "/b \"quoted\"".to_owned()];
    let criteria = selection_criteria(&names).expect("criteria");
    assert_eq!(criteria, r#"LogGroupName NOT IN ["/a", "/b \"quoted\""]"#);
    assert_eq!(excluded_names(&criteria), names);
    assert_eq!(selection_criteria(&[]), None);
}

#[test]
fn include_patterns_and_unknown_modes_are_refused() {
    let mut r = raw("account");
    r.include = Some("^/app/".into());
    assert!(matches!(
        Settings::new(r),
        Err(SettingsError::IncludeInAccountMode)
    ));
    assert!(matches!(
        Settings::new(raw("per-group")),
        Err(SettingsError::BadMode(_))
    ));
    assert_eq!(settings("").mode, Mode::LogGroup);
}

#[tokio::test]
async fn the_account_mode_puts_one_policy_excluding_the_pipeline_and_removes_our_filters() {
    let fake = account_fake();
    let s = settings("account");
    let summary = apply(&fake, &s, Options::default()).await.expect("applied");
    let policy = fake
        .account_policies
        .lock()
        .expect("policies")
        .get("org-security-logs")
        .cloned()
        .expect("our policy");
    assert_eq!(
        excluded_names(policy.selection_criteria.as_deref().expect("criteria")),
        [
            // Named exactly even before it exists, and every group the guard's prefix matches.
            "/aws/lambda/org-security-logs-collector",
            "/aws/lambda/org-security-logs-extra",
            "/aws/lambda/org-security-logs-subscriber",
            "/central/loader",
            "/noisy/debug",
        ]
    );
    assert!(
        fake.filters("/app/orders").is_empty(),
        "our per-group filter would deliver twice"
    );
    assert_eq!(summary.account_policy.as_deref(), Some("created"));
    assert_eq!((summary.already_subscribed, summary.removed), (2, 1));
    assert_eq!(summary.excluded + summary.protected, 4);
    let order = calls(&fake);
    let at = |c: &str| order.iter().position(|x| x == c).expect(c);
    assert!(
        at("put_policy") < at("delete"),
        "the policy comes first: no gap"
    );

    // Nothing changed: nothing is written.
    fake.calls.lock().expect("calls").clear();
    let again = apply(&fake, &s, Options::default()).await.expect("applied");
    assert_eq!(again.account_policy.as_deref(), Some("unchanged"));
    assert!(
        !calls(&fake)
            .iter()
            .any(|c| c == "put_policy" || c == "delete")
    );
}

#[tokio::test]
async fn another_teams_policy_is_reported_never_replaced() {
    let fake = account_fake();
    fake.account_policies.lock().expect("policies").insert(
        "their-policy".into(),
        AccountPolicy {
            name: "their-policy".into(),
            document: "{}".into(),
            selection_criteria: None,
        },
    );
    let err = apply(&fake, &settings("account"), Options::default())
        .await
        .expect_err("one policy per account");
    assert!(err.to_string().contains("their-policy"), "{err}");
    assert!(!calls(&fake).iter().any(|c| c == "put_policy"));
    assert_eq!(
        fake.filters("/app/orders").len(),
        1,
        "nothing removed either"
    );
}

#[tokio::test]
async fn exclusions_beyond_the_criteria_limit_are_refused_with_the_count() {
    let names: Vec<String> = (0..700)
        .map(|i| format!("/noisy/service-{i:04}/application-log"))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let fake = FakeLogs::with_groups(&refs);
    let err = apply(&fake, &settings("account"), Options::default())
        .await
        .expect_err("too many");
    let text = err.to_string();
    assert!(
        text.contains("703 log groups") && text.contains("25600"),
        "{text}"
    );
    assert!(!calls(&fake).iter().any(|c| c == "put_policy"));
}

#[tokio::test]
async fn a_policy_that_cannot_be_deleted_fails_the_run() {
    let fake = account_fake();
    apply(&fake, &settings("account"), Options::default())
        .await
        .expect("account mode");
    let failing = FakeLogs {
        no_account_policies: false,
        ..account_fake()
    };
    // A policy the fake will not delete: it answers describe but refuses delete.
    failing
        .account_policies
        .lock()
        .expect("policies")
        .extend(fake.account_policies.lock().expect("policies").clone());
    *failing.refuse_policy_delete.lock().expect("flag") = true;
    let summary = apply(&failing, &settings("log-group"), Options::default())
        .await
        .expect("reconciled");
    assert_eq!(summary.failures, 1, "{:?}", summary.failure_details);
    assert!(
        summary.failure_details[0]
            .log_group
            .contains("account-level")
    );
    // In the account mode, not being able to look is a failure too.
    let blind = FakeLogs {
        no_account_policies: true,
        ..account_fake()
    };
    let summary = remove(&blind, &settings("account"), Options::default())
        .await
        .expect("removed");
    assert_eq!(summary.failures, 1);
}

#[tokio::test]
async fn back_to_the_log_group_mode_subscribes_every_group_then_deletes_the_policy() {
    let fake = account_fake();
    apply(&fake, &settings("account"), Options::default())
        .await
        .expect("account mode");
    fake.calls.lock().expect("calls").clear();
    let summary = apply(&fake, &settings("log-group"), Options::default())
        .await
        .expect("log-group mode");
    assert_eq!(summary.account_policy.as_deref(), Some("deleted"));
    assert!(fake.account_policies.lock().expect("policies").is_empty());
    assert_eq!(fake.filters("/app/orders").len(), 1);
    assert_eq!(fake.filters("/app/payments").len(), 1);
    let order = calls(&fake);
    let last_put = order.iter().rposition(|c| c == "put").expect("puts");
    let deleted = order
        .iter()
        .position(|c| c == "delete_policy")
        .expect("deleted");
    assert!(last_put < deleted, "every group first: no gap");
}

#[tokio::test]
async fn without_the_account_policy_api_the_log_group_mode_goes_on() {
    let fake = FakeLogs {
        no_account_policies: true,
        ..account_fake()
    };
    let summary = apply(&fake, &settings("log-group"), Options::default())
        .await
        .expect("reconciled");
    assert_eq!(summary.account_policy, None);
    assert_eq!(summary.subscribed, 1);
    assert!(
        apply(&fake, &settings("account"), Options::default())
            .await
            .is_err(),
        "the account mode cannot work without it"
    );
}

#[tokio::test]
async fn a_new_group_is_covered_and_a_new_excluded_one_joins_the_list() {
    let fake = account_fake();
    let s = settings("account");
    apply(&fake, &s, Options::default()).await.expect("applied");
    fake.calls.lock().expect("calls").clear();
    let covered = new_group(&fake, &s, "/app/new", false)
        .await
        .expect("handled");
    assert_eq!(covered.already_subscribed, 1);
    assert!(calls(&fake).is_empty(), "{:?}", calls(&fake));

    fake.groups
        .lock()
        .expect("groups")
        .insert("/noisy/new".into(), Vec::new());
    let excluded = new_group(&fake, &s, "/noisy/new", false)
        .await
        .expect("handled");
    assert_eq!(excluded.excluded, 1);
    assert_eq!(excluded.account_policy.as_deref(), Some("updated"));
    let policy = fake.account_policies.lock().expect("policies")["org-security-logs"].clone();
    assert!(
        excluded_names(policy.selection_criteria.as_deref().unwrap_or_default())
            .contains(&"/noisy/new".to_owned())
    );
}

#[tokio::test]
async fn coverage_counts_every_group_the_policy_does_not_exclude() {
    let fake = account_fake();
    let s = settings("account");
    assert!(policy_coverage(&fake, &s).await.is_none(), "no policy yet");
    apply(&fake, &s, Options::default()).await.expect("applied");
    let c = policy_coverage(&fake, &s)
        .await
        .expect("covered by the policy");
    assert_eq!(
        (c.groups_seen, c.already_subscribed, c.protected, c.excluded),
        (6, 2, 3, 1)
    );
    // A policy of ours to another destination does not count.
    let mut elsewhere = raw("account");
    elsewhere.destination_arn = "arn:aws:lambda:eu-west-1:111122223333:function:other".into();
    assert!(
        policy_coverage(&fake, &Settings::new(elsewhere).expect("valid"))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_renamed_filter_replaces_the_policy_of_the_old_name() {
    let fake = account_fake();
    let mut old = settings("account");
    old.filter_name = "old-name".into();
    apply(&fake, &old, Options::default())
        .await
        .expect("old name");
    let mut summary = Summary::default();
    withdraw_policy(&fake, &old, false, &mut summary).await;
    apply(&fake, &settings("account"), Options::default())
        .await
        .expect("new name");
    let names: Vec<String> = fake
        .account_policies
        .lock()
        .expect("policies")
        .keys()
        .cloned()
        .collect();
    assert_eq!(names, ["org-security-logs"]);
}

#[tokio::test]
async fn the_stack_delete_removes_the_policy_too() {
    let fake = account_fake();
    let s = settings("account");
    apply(&fake, &s, Options::default()).await.expect("applied");
    let summary = remove(&fake, &s, Options::default())
        .await
        .expect("removed");
    assert_eq!(summary.account_policy.as_deref(), Some("deleted"));
    assert!(fake.account_policies.lock().expect("policies").is_empty());
}

/// The request the SDK sends for PutAccountPolicy, as CloudWatch Logs receives it.
#[tokio::test]
async fn put_account_policy_sends_the_subscription_filter_policy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("a request");
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.expect("read");
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 2\r\n\r\n{}";
        socket.write_all(answer.as_bytes()).await.expect("answer");
        String::from_utf8_lossy(&request).to_string()
    });
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(&url)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKID", "secret", None, None, "test"),
            ),
        )
        .build();
    let api = crate::aws::CloudWatchLogs::new(&config, crate::aws::Limits::default());
    let policy = wanted_policy(&settings("account"), &["/noisy/debug".to_owned()]).expect("policy");
    api.put_account_policy(&policy).await.expect("accepted");
    let request = server.await.expect("served");
    let (head, body) = request.split_once("\r\n\r\n").expect("a body");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-amz-target: logs_20140328.putaccountpolicy"),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(body["policyName"], "org-security-logs");
    assert_eq!(body["policyType"], "SUBSCRIPTION_FILTER_POLICY");
    assert_eq!(body["scope"], "ALL");
    assert!(
        body["selectionCriteria"].as_str().is_some_and(
            |c| c.starts_with("LogGroupName NOT IN [") && c.contains("\"/noisy/debug\"")
        ),
        "{body}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(body["policyDocument"].as_str().expect("document")).expect("JSON");
    assert_eq!(doc["DestinationArn"], DEST);
    assert_eq!(api.counts().account_policy, 1);
}
