//! Reconcile over 2,000 log groups.

use crate::support::TestAccount;
use crate::{FILTER, SELF_FUNCTION, logs, options, settings};
use std::time::Instant;
use subscriber::reconcile::{self, Conflict};

#[tokio::test]
async fn reconcile_of_2000_groups_subscribes_every_eligible_one_once() {
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    let old = account.create_function("old-collector").await;
    let team = account.create_function("team-consumer").await;

    let plain: Vec<String> = (0..1985).map(|i| format!("/app/service-{i:04}")).collect();
    let excluded: Vec<String> = (0..10).map(|i| format!("/excluded/debug-{i}")).collect();
    let special = vec![
        "/aws/lambda/org-security-logs-collector".to_owned(),
        format!("/aws/lambda/{SELF_FUNCTION}"),
        "/app/full".to_owned(),
        "/app/stale".to_owned(),
        "/app/done".to_owned(),
    ];
    let started = Instant::now();
    account.create_groups(&plain).await;
    account.create_groups(&excluded).await;
    account.create_groups(&special).await;
    account.put_filter("/app/full", "team-a", &team).await;
    account.put_filter("/app/full", "team-b", &team).await;
    account.put_filter("/app/stale", FILTER, &old).await;
    account.put_filter("/app/done", FILTER, &collector).await;
    eprintln!("created 2,000 log groups in {:?}", started.elapsed());

    let settings = settings(&collector, Some("^/excluded/"));
    let api = logs(&account);
    let started = Instant::now();
    let first = reconcile::reconcile(&api, &settings, options())
        .await
        .expect("reconcile");
    eprintln!(
        "first reconcile: {:?}, {:?}",
        started.elapsed(),
        api.counts()
    );
    assert_eq!(first.groups_seen, 2000);
    assert_eq!(first.subscribed, 1985);
    assert_eq!(first.updated, 1);
    assert_eq!(first.already_subscribed, 1);
    assert_eq!(first.excluded, 10);
    assert_eq!(first.protected, 2);
    assert_eq!(first.conflicts, 1);
    assert_eq!(first.failures, 0);
    assert_eq!(
        first.conflict_details,
        vec![Conflict {
            log_group: "/app/full".into(),
            filters: vec!["team-a".into(), "team-b".into()]
        }]
    );
    // The listing, one describe per candidate, one put per group that needed it.
    let counts = api.counts();
    assert_eq!(counts.describe_log_groups, 40);
    assert_eq!(counts.describe_subscription_filters, 1988);
    assert_eq!(counts.put_subscription_filter, 1986);
    assert_eq!(counts.retried, 0);

    for group in [&plain[0], &plain[1984], &"/app/stale".to_owned()] {
        assert_eq!(
            account.filters(group).await,
            vec![(FILTER.to_owned(), collector.clone())],
            "{group}"
        );
    }
    for group in excluded.iter().chain(&special[..2]) {
        assert!(account.filters(group).await.is_empty(), "{group}");
    }

    let again_api = logs(&account);
    let second = reconcile::reconcile(&again_api, &settings, options())
        .await
        .expect("reconcile");
    assert_eq!(second.subscribed + second.updated, 0, "{second:?}");
    assert_eq!(second.already_subscribed, 1987);
    assert_eq!(second.conflicts, 1);
    assert_eq!(second.failures, 0);
    assert_eq!(again_api.counts().put_subscription_filter, 0);
}

#[tokio::test]
async fn dry_run_reports_without_changing() {
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    account
        .create_groups(&["/app/a".to_owned(), "/app/b".to_owned()])
        .await;
    let api = logs(&account);
    let mut opts = options();
    opts.dry_run = true;
    let summary = reconcile::reconcile(&api, &settings(&collector, None), opts)
        .await
        .expect("reconcile");
    assert_eq!(summary.subscribed, 2);
    assert_eq!(api.counts().put_subscription_filter, 0);
    assert!(account.filters("/app/a").await.is_empty());
}
