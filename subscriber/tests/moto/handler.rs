//! The Lambda handler with CloudTrail events in the documented shape.

use crate::support::{TestAccount, cloudtrail_event};
use crate::{FILTER, SELF_FUNCTION, logs, options, settings};
use serde_json::json;
use shared::cfn::HttpResponder;
use subscriber::handler::Handler;

async fn handler_for(
    account: &TestAccount,
    destination: &str,
) -> Handler<subscriber::aws::CloudWatchLogs, HttpResponder> {
    Handler {
        api: logs(account),
        responder: HttpResponder::new().expect("HTTP client"),
        settings: settings(destination, Some("^/excluded/")),
        options: options(),
    }
}

#[tokio::test]
async fn create_log_group_event_subscribes_the_new_group_only_when_eligible() {
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    let groups: Vec<String> = [
        "/app/orders",
        "/aws/lambda/org-security-logs-collector",
        &format!("/aws/lambda/{SELF_FUNCTION}"),
        "/excluded/debug",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    account.create_groups(&groups).await;
    let handler = handler_for(&account, &collector).await;

    for group in &groups {
        let event = cloudtrail_event(
            &account.id,
            "CreateLogGroup",
            json!({"logGroupName": group}),
            "alice",
        );
        handler.handle(&event, None).await.expect("handled");
    }

    assert_eq!(
        account.filters("/app/orders").await,
        vec![(FILTER.to_owned(), collector.clone())]
    );
    for never in &groups[1..] {
        assert!(
            account.filters(never).await.is_empty(),
            "{never} must not be subscribed"
        );
    }
    // One request for the one eligible group, nothing else.
    let counts = handler.api.counts();
    assert_eq!(counts.put_subscription_filter, 1);
    assert_eq!(counts.describe_subscription_filters, 0);
}

#[tokio::test]
async fn our_deleted_filter_is_put_back_and_others_are_left_alone() {
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    let other = account.create_function("another-team-consumer").await;
    account.create_groups(&["/app/payments".to_owned()]).await;
    let handler = handler_for(&account, &collector).await;

    let created = cloudtrail_event(
        &account.id,
        "CreateLogGroup",
        json!({"logGroupName": "/app/payments"}),
        "alice",
    );
    handler.handle(&created, None).await.expect("handled");
    account
        .put_filter("/app/payments", "team-filter", &other)
        .await;

    // An attacker removes our filter.
    account
        .logs
        .delete_subscription_filter()
        .log_group_name("/app/payments")
        .filter_name(FILTER)
        .send()
        .await
        .expect("delete");
    let deleted = cloudtrail_event(
        &account.id,
        "DeleteSubscriptionFilter",
        json!({"logGroupName": "/app/payments", "filterName": FILTER}),
        "mallory",
    );
    let outcome = handler.handle(&deleted, None).await.expect("handled");
    assert_eq!(outcome.summary.subscribed, 1);
    let mut filters = account.filters("/app/payments").await;
    filters.sort();
    assert_eq!(
        filters,
        vec![
            (FILTER.to_owned(), collector.clone()),
            ("team-filter".to_owned(), other.clone())
        ]
    );

    // Another team deletes its own filter: nothing to do.
    account
        .logs
        .delete_subscription_filter()
        .log_group_name("/app/payments")
        .filter_name("team-filter")
        .send()
        .await
        .expect("delete");
    let theirs = cloudtrail_event(
        &account.id,
        "DeleteSubscriptionFilter",
        json!({"logGroupName": "/app/payments", "filterName": "team-filter"}),
        "bob",
    );
    let before = handler.api.counts();
    handler.handle(&theirs, None).await.expect("handled");
    assert_eq!(
        handler.api.counts(),
        before,
        "no request for another team's filter"
    );
    assert_eq!(
        account.filters("/app/payments").await,
        vec![(FILTER.to_owned(), collector)]
    );
}

#[tokio::test]
async fn deletion_event_for_a_deleted_group_puts_nothing() {
    let account = TestAccount::new().await;
    let collector = account.create_function("org-security-logs-collector").await;
    let handler = handler_for(&account, &collector).await;
    let deleted = cloudtrail_event(
        &account.id,
        "DeleteSubscriptionFilter",
        json!({"logGroupName": "/app/gone", "filterName": FILTER}),
        "alice",
    );
    let outcome = handler.handle(&deleted, None).await.expect("handled");
    assert_eq!(outcome.summary.vanished, 1);
    assert_eq!(handler.api.counts().put_subscription_filter, 0);
}
